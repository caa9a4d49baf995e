// Package forgestatus tells a repository's forge how each pipeline run of
// a commit is going: the commit status (pending, running, success,
// failure, error) every CI system shows beside a commit or pull request,
// one context per pipeline ("slipway/<pipeline>"), with a line of words
// and a link to the run. GitHub (commit statuses API), GitLab (commit
// status API) and Gitea/Forgejo (statuses API) are spoken here; the
// Reporter decides what to say and when, and retries politely.
package forgestatus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipwayci/slipway/forgeapi"
)

// States of a run as a forge is told.
const (
	Pending = "pending" // queued
	Running = "running" // a stage is running
	Success = "success"
	Failure = "failure"
	Error   = "error" // cancelled, or the engine could not run it
)

// Status is what one run says about one commit.
type Status struct {
	SHA         string
	Context     string // slipway/<pipeline>
	State       string // one of the states above
	Description string // one line, at most 140 characters
	TargetURL   string // the run's page
}

// Forge is one forge's commit status API for one repository.
type Forge interface {
	// Name is the forge's name: github, gitlab, gitea.
	Name() string
	// Request is the HTTP request that sets s.
	Request(ctx context.Context, s Status) (*http.Request, error)
}

// New is the status API of the repository at repoURL on forge (github,
// gitlab, gitea), reached at api (default: derived from repoURL, see
// forgeapi.Locate) with token.
func New(forge, repoURL, api, token string) (Forge, error) {
	base, path, err := forgeapi.Locate(forge, repoURL, api)
	if err != nil {
		return nil, err
	}
	switch forge {
	case "github":
		return github{api: base, repo: path, token: token}, nil
	case "gitlab":
		return gitlab{api: base, project: path, token: token}, nil
	case "gitea":
		return gitea{api: base, repo: path, token: token}, nil
	}
	return nil, fmt.Errorf("forge %q has no commit status API here", forge)
}

// jsonRequest is a POST of body as JSON.
func jsonRequest(ctx context.Context, endpoint string, body any) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "slipway")
	return req, nil
}

// repoPath escapes each segment of owner/repo for a URL path.
func repoPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// github: POST /repos/{owner}/{repo}/statuses/{sha}; no "running" state.
// Authenticated by a token, or by a GitHub App's installation tokens.
type github struct {
	api, repo, token string
	tokens           tokenSource // set for a GitHub App
}

// githubAPIVersion is the REST API version the requests are written for.
const githubAPIVersion = "2022-11-28"

func (github) Name() string { return "github" }

func (g github) Request(ctx context.Context, s Status) (*http.Request, error) {
	token := g.token
	if g.tokens != nil {
		var err error
		if token, err = g.tokens.token(ctx); err != nil {
			return nil, err
		}
	}
	req, err := repoStatus(ctx, g.api, g.repo, s)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", githubAPIVersion)
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// repoStatus is the request GitHub and Gitea share: POST
// {api}/repos/{owner}/{repo}/statuses/{sha} with state (running is
// pending: neither has it), target_url, description and context.
func repoStatus(ctx context.Context, api, repo string, s Status) (*http.Request, error) {
	state := s.State
	if state == Running {
		state = Pending
	}
	return jsonRequest(ctx, api+"/repos/"+repoPath(repo)+"/statuses/"+url.PathEscape(s.SHA),
		map[string]string{"state": state, "target_url": s.TargetURL, "description": s.Description, "context": s.Context})
}

// gitlab: POST /projects/{url-encoded path}/statuses/{sha}; its states
// are pending, running, success, failed, canceled.
type gitlab struct{ api, project, token string }

func (gitlab) Name() string { return "gitlab" }

func (g gitlab) Request(ctx context.Context, s Status) (*http.Request, error) {
	state := map[string]string{Pending: "pending", Running: "running", Success: "success", Failure: "failed", Error: "canceled"}[s.State]
	req, err := jsonRequest(ctx, g.api+"/projects/"+url.PathEscape(g.project)+"/statuses/"+url.PathEscape(s.SHA),
		map[string]string{"state": state, "name": s.Context, "target_url": s.TargetURL, "description": s.Description})
	if err != nil {
		return nil, err
	}
	req.Header.Set("PRIVATE-TOKEN", g.token)
	return req, nil
}

// gitea (and Forgejo): POST /repos/{owner}/{repo}/statuses/{sha}; states
// pending, success, error, failure, warning.
type gitea struct{ api, repo, token string }

func (gitea) Name() string { return "gitea" }

func (g gitea) Request(ctx context.Context, s Status) (*http.Request, error) {
	req, err := repoStatus(ctx, g.api, g.repo, s)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "token "+g.token)
	return req, nil
}
