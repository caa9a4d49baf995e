package forgestatus

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// captured is one request a forge received.
type captured struct {
	method, path string
	header       http.Header
	body         map[string]string
}

// forgeServer records requests and answers each with the next of codes
// (then 201), with headers.
func forgeServer(t *testing.T, answers ...func(w http.ResponseWriter)) (*httptest.Server, *[]captured) {
	t.Helper()
	var got []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]string
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("body is not a JSON object of strings: %q", b)
		}
		got = append(got, captured{r.Method, r.URL.EscapedPath(), r.Header.Clone(), body})
		if n := len(got); n <= len(answers) {
			answers[n-1](w)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":1}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// send makes f's request for s and sends it.
func send(t *testing.T, f Forge, s Status) {
	t.Helper()
	req, err := f.Request(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

var sample = Status{SHA: "0123456789abcdef0123456789abcdef01234567", Context: "slipway/order-service", State: Running,
	Description: "running build (stage 2 of 5)", TargetURL: "https://slipway.example/runs/7"}

// Each forge's request is the one its documentation gives: method, path,
// auth header, JSON fields and its own names for the states.
func TestRequestsAreWhatEachForgeDocuments(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		forge, repoPath       string
		wantPath              string
		authHeader, authValue string
		state                 string // what Running and Failure become
		failure               string
		contextField          string
	}{
		{"github", "/acme/shop.git", "/repos/acme/shop/statuses/" + sample.SHA, "Authorization", "Bearer tok", "pending", "failure", "context"},
		{"gitlab", "/group/sub/shop", "/projects/group%2Fsub%2Fshop/statuses/" + sample.SHA, "Private-Token", "tok", "running", "failed", "name"},
		{"gitea", "/acme/shop", "/repos/acme/shop/statuses/" + sample.SHA, "Authorization", "token tok", "pending", "failure", "context"},
	} {
		srv, got := forgeServer(t)
		f, err := New(tt.forge, "https://forge.example"+tt.repoPath, srv.URL, "tok")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []Status{sample, {SHA: sample.SHA, Context: sample.Context, State: Failure}} {
			send(t, f, s)
		}
		c := (*got)[0]
		if c.method != "POST" || c.path != tt.wantPath || c.header.Get(tt.authHeader) != tt.authValue || c.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %s %s, %s: %q", tt.forge, c.method, c.path, tt.authHeader, c.header.Get(tt.authHeader))
		}
		if c.body["state"] != tt.state || c.body[tt.contextField] != sample.Context || c.body["target_url"] != sample.TargetURL || c.body["description"] != sample.Description {
			t.Errorf("%s: body %v", tt.forge, c.body)
		}
		if st := (*got)[1].body["state"]; st != tt.failure {
			t.Errorf("%s: failure sent as %q, want %q", tt.forge, st, tt.failure)
		}
		if tt.forge == "github" && (c.header.Get("Accept") != "application/vnd.github+json" || c.header.Get("X-Github-Api-Version") != "2022-11-28") {
			t.Errorf("github headers: %v", c.header)
		}
	}
}

// The API is found from the repository URL when not given.
func TestAPIFromTheRepositoryURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ forge, repo, want string }{
		{"github", "https://github.com/acme/shop.git", "https://api.github.com/repos/acme/shop/statuses/abc"},
		{"github", "https://ghe.corp.example/acme/shop", "https://ghe.corp.example/api/v3/repos/acme/shop/statuses/abc"},
		{"github", "https://github.com/acme/shop", "https://api.github.com/repos/acme/shop/statuses/abc"},
		{"gitlab", "https://gitlab.example/g/s/p.git", "https://gitlab.example/api/v4/projects/g%2Fs%2Fp/statuses/abc"},
		{"gitea", "http://127.0.0.1:3000/org/repo.git", "http://127.0.0.1:3000/api/v1/repos/org/repo/statuses/abc"},
	} {
		f, err := New(tt.forge, tt.repo, "", "t")
		if err != nil {
			t.Fatalf("%s %s: %v", tt.forge, tt.repo, err)
		}
		req, _ := f.Request(context.Background(), Status{SHA: "abc", State: Success})
		if req.URL.String() != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.forge, tt.repo, req.URL, tt.want)
		}
	}
}

// Repository URLs that name no forge API are refused with a reason.
func TestHostileRepositoryURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ forge, repo, want string }{
		{"github", "git@github.com:acme/shop.git", "http(s) repository URL"},
		{"github", "file:///srv/repo", "http(s) repository URL"},
		{"github", "ssh://git@github.com/acme/shop.git", "http(s) repository URL"},
		{"gitea", "https://forge.example/a//b", "does not name an owner/repository"},
		{"gitea", "https://forge.example/", "does not name an owner/repository"},
		{"gitea", "https://forge.example/a/../../admin", "does not name an owner/repository"},
		{"bitbucket", "https://forge.example/a/b", "no commit status API"},
	} {
		if _, err := New(tt.forge, tt.repo, "", "t"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s, %q) = %v, want %q", tt.forge, tt.repo, err, tt.want)
		}
	}
	// An SSH URL works with the API given.
	f, err := New("gitlab", "git@gitlab.example:g/p.git", "https://gitlab.example/api/v4", "t")
	if err != nil {
		t.Fatal(err)
	}
	if req, _ := f.Request(context.Background(), Status{SHA: "abc", State: Success}); req.URL.String() != "https://gitlab.example/api/v4/projects/g%2Fp/statuses/abc" {
		t.Errorf("SSH repository: %s", req.URL)
	}
	// A sha or owner with URL syntax stays inside the path.
	f, _ = New("gitea", "https://forge.example/o%3Fx/r", "", "t")
	req, _ := f.Request(context.Background(), Status{SHA: "../../admin?x=1#y", State: Success})
	if req.URL.RawQuery != "" || req.URL.Fragment != "" || !strings.HasPrefix(req.URL.EscapedPath(), "/api/v1/repos/") || strings.Contains(req.URL.EscapedPath(), "/../") {
		t.Errorf("escaped request URL %s", req.URL)
	}
}
