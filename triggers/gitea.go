package triggers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Gitea speaks Gitea's webhook format, which Forgejo speaks too:
// X-Gitea-Signature (hex HMAC-SHA256 of the body), X-Gitea-Event,
// X-Gitea-Delivery — or the same headers named X-Forgejo-*.
type Gitea struct{}

func (Gitea) Name() string { return "gitea" }

// header reads a Gitea header, or its Forgejo twin.
func giteaHeader(h http.Header, suffix string) string {
	if v := h.Get("X-Gitea-" + suffix); v != "" {
		return v
	}
	return h.Get("X-Forgejo-" + suffix)
}

func (Gitea) Credential(h http.Header) (string, bool) {
	return strings.ToLower(strings.TrimPrefix(giteaHeader(h, "Signature"), "sha256=")), true
}

func (Gitea) DeliveryID(h http.Header) string { return giteaHeader(h, "Delivery") }

func (Gitea) Parse(h http.Header, body []byte) (*Event, error) {
	name := giteaHeader(h, "Event")
	var p struct {
		Ref        string `json:"ref"`
		Before     string `json:"before"`
		After      string `json:"after"`
		Repository struct {
			FullName string `json:"full_name"`
			CloneURL string `json:"clone_url"`
			HTMLURL  string `json:"html_url"`
			SSHURL   string `json:"ssh_url"`
		} `json:"repository"`
		Pusher struct {
			Login string `json:"login"`
		} `json:"pusher"`
		Commits      []commit `json:"commits"`
		TotalCommits *int     `json:"total_commits"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("malformed Gitea %s payload: %v", name, err)
	}
	r := p.Repository
	ev := &Event{Name: name, RepoURLs: nonEmpty(r.CloneURL, r.HTMLURL, r.SSHURL), RepoName: r.FullName}
	switch name {
	case "":
		return nil, fmt.Errorf("no X-Gitea-Event header")
	case "push":
		if p.Ref == "" || p.After == "" {
			return nil, fmt.Errorf("malformed Gitea push payload: no ref or after")
		}
		ev.pushed(p.Ref, p.Before, p.After, p.Pusher.Login)
		ev.Deleted = isZeroSHA(p.After)
		ev.Paths = changedPaths(p.Commits, p.TotalCommits == nil || *p.TotalCommits <= len(p.Commits))
	default:
		ev.Kind, ev.Reason = KindIgnored, fmt.Sprintf("Gitea %s events do not start pipelines", name)
	}
	return ev, nil
}

var _ Forge = Gitea{}
