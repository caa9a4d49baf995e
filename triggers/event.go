package triggers

import (
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Event kinds a forge delivery is normalized to.
const (
	KindPush    = "push"    // a branch was pushed
	KindTag     = "tag"     // a tag was pushed
	KindPing    = "ping"    // the forge checks the hook
	KindIgnored = "ignored" // anything else; Reason says what
)

// Event is a forge delivery, normalized.
type Event struct {
	Kind     string   `json:"kind"`
	Name     string   `json:"name"` // the forge's own event name
	Reason   string   `json:"reason,omitempty"`
	RepoURLs []string `json:"repoUrls"` // every URL the payload gives for the repository
	RepoName string   `json:"repoName,omitempty"`
	Ref      string   `json:"ref,omitempty"`
	Before   string   `json:"before,omitempty"`
	After    string   `json:"after,omitempty"`
	Deleted  bool     `json:"deleted,omitempty"`
	// Paths changed by the push; nil when the payload cannot tell (too many
	// commits for the forge to list), and path filters then let it through.
	Paths  []string `json:"paths"`
	Pusher string   `json:"pusher,omitempty"`
	// Listed: the push was found by listing the repository (Reconciler),
	// which does not tell the paths it changed.
	Listed bool `json:"listed,omitempty"`
}

// commit is the part of a commit every forge's push payload shares.
type commit struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Modified []string `json:"modified"`
}

// changedPaths is the union of the commits' paths, or nil when complete
// is false (the payload lists only some of the commits).
func changedPaths(commits []commit, complete bool) []string {
	if !complete {
		return nil
	}
	seen := map[string]bool{}
	paths := []string{}
	for _, c := range commits {
		for _, list := range [][]string{c.Added, c.Removed, c.Modified} {
			for _, p := range list {
				if !seen[p] {
					seen[p] = true
					paths = append(paths, p)
				}
			}
		}
	}
	return paths
}

// refKind says whether ref is a tag push.
func refKind(ref string) string {
	if strings.HasPrefix(ref, "refs/tags/") {
		return KindTag
	}
	return KindPush
}

// pushed fills ev from a push and tells a hook's test delivery from a
// push: Gitea, Forgejo and Gogs test a hook by sending a push of the
// branch's head with before = after — no ref moved, so nothing is started
// and the delivery is answered as a ping.
func (ev *Event) pushed(ref, before, after, pusher string) {
	ev.Kind, ev.Ref, ev.Before, ev.After, ev.Pusher = refKind(ref), ref, before, after, pusher
	if before != "" && before == after {
		ev.Kind, ev.Reason = KindPing, "a test delivery: before and after are the same commit, no ref moved"
	}
}

// zeroSHA is what forges send as "after" when a ref is deleted.
func isZeroSHA(s string) bool { return s != "" && strings.Trim(s, "0") == "" }

// NormalizeRepoURL reduces a clone or web URL to lower-case host/path,
// without credentials, scheme, port, trailing slash or ".git", so the many
// spellings of one repository compare equal (the forges treat owner and
// repository names case-insensitively). SSH forms (git@host:org/repo.git)
// are understood too.
func NormalizeRepoURL(raw string) string {
	s := strings.TrimSpace(raw)
	ep, err := transport.NewEndpoint(s) // go-git's reading: URLs and scp-style host:path
	if err != nil || ep.Host == "" {
		return strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git"))
	}
	path := strings.TrimSuffix(strings.TrimSuffix(ep.Path, "/"), ".git")
	return strings.ToLower(ep.Host + "/" + strings.TrimPrefix(path, "/"))
}
