package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveRefusesEscapes(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "svc"), 0o755)
	os.WriteFile(filepath.Join(repo, "svc", "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(repo, "escape"))
	os.Symlink("/etc/passwd", filepath.Join(repo, "svc", "passwd"))
	os.Symlink("Dockerfile", filepath.Join(repo, "svc", "Dockerfile.link"))
	tests := []struct {
		rel  string
		want Kind
		err  string
	}{
		{"svc", Dir, ""},
		{"svc/Dockerfile", File, ""},
		{"svc/Dockerfile.link", File, ""},
		{".", Dir, ""},
		{"../x", Dir, "does not exist"},
		{"svc/../..", Dir, "leaves the repository"},
		{"escape", Dir, "leaves the repository"},
		{"escape/secret", File, "leaves the repository"},
		{"svc/passwd", File, "leaves the repository"},
		{"/etc", Dir, "must be relative"},
		{"svc/missing", File, "does not exist"},
		{"svc", File, "is not a regular file"},
		{"svc/Dockerfile", Dir, "is not a directory"},
	}
	for _, tt := range tests {
		_, err := Resolve(repo, tt.rel, tt.want)
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Resolve(%q) = %v, want %q", tt.rel, err, tt.err)
		}
	}
}

// A stage reading the checkout of a run that made none is told why.
func TestResolveWithoutACheckout(t *testing.T) {
	t.Parallel()
	_, err := Resolve(filepath.Join(t.TempDir(), "never-made"), "Dockerfile", File)
	if err == nil || !strings.Contains(err.Error(), "no checkout") || !strings.Contains(err.Error(), "clone") {
		t.Errorf("Resolve in a workdir never made = %v, want it to say a clone stage must come first", err)
	}
}
