// Package forgeapi says where a forge's API is for a repository: from its
// clone URL (an http(s) URL, or scp-style git@host:owner/repo) and its
// forge, or as the operator wrote it. The engine config checks a
// repository's commit-status settings with it and forgestatus reaches the
// API it finds; it imports nothing of Slipway.
package forgeapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Locate is the API base URL of the repository at repoURL on forge
// (github, gitlab, gitea) — api when set, else the forge's default beside
// the repository's host — and the repository's path there (owner/repo).
func Locate(forge, repoURL, api string) (base, repo string, err error) {
	scheme, host, path, ok := splitRepoURL(repoURL)
	if !ok || (api == "" && scheme == "") {
		return "", "", fmt.Errorf("commit statuses need an http(s) repository URL to find the forge's API, or api: set; %q is not one", repoURL)
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if strings.Count(path, "/") < 1 || slices.Contains(strings.Split(path, "/"), "..") || strings.Contains(path, "//") {
		return "", "", fmt.Errorf("%q does not name an owner/repository", repoURL)
	}
	base = api
	if base == "" {
		base = scheme + "://" + host + map[string]string{"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1"}[forge]
		if forge == "github" && strings.EqualFold(host, "github.com") {
			base = "https://api.github.com"
		}
	}
	return strings.TrimSuffix(base, "/"), path, nil
}

// splitRepoURL reads an http(s) URL, or an scp-style git@host:owner/repo
// (scheme ""), into its parts.
func splitRepoURL(raw string) (scheme, host, path string, ok bool) {
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return u.Scheme, u.Host, u.Path, true
	}
	at, rest, found := strings.Cut(raw, "@")
	if !found || strings.Contains(at, "/") || strings.Contains(raw, "://") {
		return "", "", "", false
	}
	host, path, found = strings.Cut(rest, ":")
	return "", host, path, found && host != ""
}
