package clone

import "testing"

// Credentials go only where the repository is: the scope is what go-git
// reads as the scheme, host and port, for URLs and scp-style addresses.
func TestCredentialScope(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://GitHub.com/org/repo.git":         "https://github.com",
		"https://user:tok@git.example.com:8443/r": "https://git.example.com:8443",
		"git@github.com:org/repo.git":             "ssh://github.com",
		"ssh://git@github.com:2222/org/repo":      "ssh://github.com:2222",
		"github.com:org/repo":                     "ssh://github.com",
	} {
		if got := credentialScope(raw); got != want {
			t.Errorf("credentialScope(%q) = %q, want %q", raw, got, want)
		}
	}
	for _, local := range []string{"/srv/repo", "./repo", "file:///srv/repo", "~/repo", "repo"} {
		if err := CheckRemoteURL(local); err == nil {
			t.Errorf("CheckRemoteURL(%q) accepted a local path", local)
		}
	}
	for _, remote := range []string{"git@github.com:org/repo.git", "https://github.com/org/repo", "ssh://git@h/r"} {
		if err := CheckRemoteURL(remote); err != nil {
			t.Errorf("CheckRemoteURL(%q): %v", remote, err)
		}
	}
}
