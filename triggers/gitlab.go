package triggers

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// GitLab speaks GitLab's webhook format: the secret token is sent as is in
// X-Gitlab-Token; X-Gitlab-Event names the event; X-Gitlab-Event-UUID (or
// Idempotency-Key) identifies the delivery. A push lists at most 20 commits
// and says how many there were.
type GitLab struct{}

func (GitLab) Name() string { return "gitlab" }

func (GitLab) Credential(h http.Header) (string, bool) { return h.Get("X-Gitlab-Token"), false }

func (GitLab) DeliveryID(h http.Header) string {
	if id := h.Get("X-Gitlab-Event-UUID"); id != "" {
		return id
	}
	return h.Get("Idempotency-Key")
}

func (GitLab) Parse(h http.Header, body []byte) (*Event, error) {
	name := h.Get("X-Gitlab-Event")
	var p struct {
		ObjectKind string `json:"object_kind"`
		Ref        string `json:"ref"`
		Before     string `json:"before"`
		After      string `json:"after"`
		User       string `json:"user_username"`
		Project    struct {
			Path    string `json:"path_with_namespace"`
			HTTPURL string `json:"git_http_url"`
			SSHURL  string `json:"git_ssh_url"`
			WebURL  string `json:"web_url"`
		} `json:"project"`
		Commits      []commit `json:"commits"`
		TotalCommits int      `json:"total_commits_count"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("malformed GitLab %s payload: %v", name, err)
	}
	ev := &Event{Name: name, RepoURLs: nonEmpty(p.Project.HTTPURL, p.Project.SSHURL, p.Project.WebURL), RepoName: p.Project.Path}
	switch {
	case name == "":
		return nil, fmt.Errorf("no X-Gitlab-Event header")
	case name == "Push Hook" || name == "Tag Push Hook":
		if p.Ref == "" || p.After == "" {
			return nil, fmt.Errorf("malformed GitLab %s payload: no ref or after", name)
		}
		ev.pushed(p.Ref, p.Before, p.After, p.User)
		ev.Deleted = isZeroSHA(p.After)
		ev.Paths = changedPaths(p.Commits, p.TotalCommits <= len(p.Commits))
	default:
		ev.Kind, ev.Reason = KindIgnored, fmt.Sprintf("GitLab %s events do not start pipelines", name)
	}
	return ev, nil
}

var _ Forge = GitLab{}
