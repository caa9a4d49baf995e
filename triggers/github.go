package triggers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// GitHub speaks GitHub's webhook format: X-Hub-Signature-256 (HMAC-SHA256
// of the raw body), X-GitHub-Event, X-GitHub-Delivery.
type GitHub struct{}

// githubMaxCommits is how many commits GitHub lists in a push at most.
const githubMaxCommits = 2048

func (GitHub) Name() string { return "github" }

func (GitHub) Credential(h http.Header) (string, bool) {
	sig, _ := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
	return strings.ToLower(sig), true
}

func (GitHub) DeliveryID(h http.Header) string { return h.Get("X-GitHub-Delivery") }

type githubRepo struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	HTMLURL  string `json:"html_url"`
	SSHURL   string `json:"ssh_url"`
	GitURL   string `json:"git_url"`
}

func (r githubRepo) urls() []string { return nonEmpty(r.CloneURL, r.HTMLURL, r.SSHURL, r.GitURL) }

func (GitHub) Parse(h http.Header, body []byte) (*Event, error) {
	name := h.Get("X-GitHub-Event")
	var p struct {
		Ref        string     `json:"ref"`
		Before     string     `json:"before"`
		After      string     `json:"after"`
		Deleted    bool       `json:"deleted"`
		Repository githubRepo `json:"repository"`
		Pusher     struct {
			Name string `json:"name"`
		} `json:"pusher"`
		Commits []commit `json:"commits"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("malformed GitHub %s payload: %v", name, err)
	}
	ev := &Event{Name: name, RepoURLs: p.Repository.urls(), RepoName: p.Repository.FullName}
	switch name {
	case "ping":
		ev.Kind = KindPing
	case "push":
		if p.Ref == "" || p.After == "" {
			return nil, fmt.Errorf("malformed GitHub push payload: no ref or after")
		}
		ev.pushed(p.Ref, p.Before, p.After, p.Pusher.Name)
		ev.Deleted = p.Deleted || isZeroSHA(p.After)
		ev.Paths = changedPaths(p.Commits, len(p.Commits) < githubMaxCommits)
	case "":
		return nil, fmt.Errorf("no X-GitHub-Event header")
	default:
		ev.Kind, ev.Reason = KindIgnored, fmt.Sprintf("GitHub %s events do not start pipelines", name)
	}
	return ev, nil
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var _ Forge = GitHub{}
