package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/server/api"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/hooks"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/fake"
	"github.com/slipwayci/slipway/triggers"
)

type apiTest struct {
	url string
	st  store.Store
	srv *Server
}

func token(name string, role auth.Role, value string, apps ...string) auth.Token {
	return auth.Token{Name: name, Role: role, Apps: apps, Hash: sha256.Sum256([]byte(value))}
}

func mustPipeline(t testing.TB, src string) triggers.Source {
	t.Helper()
	p, err := pipeline.Parse("p.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	return triggers.FileSource{P: p}
}

func newAPI(t testing.TB) *apiTest {
	t.Helper()
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := stages.NewRegistry()
	kinds.Register("fake", fake.New(nil))
	m := NewMetrics(st)
	r, err := runner.New(st, kinds, runner.WithObserver(m), runner.WithWorkRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	res := &Resolved{
		Repos: []*triggers.Repo{{Config: engineconfig.Repository{Name: "shop", URL: "https://git.example.com/shop.git", Forge: "github"}, Secret: "s",
			Sources: []triggers.Source{
				mustPipeline(t, `metadata: {name: shop}
on: {manual: {parameters: {size: {default: small}}}}
stages:
  - {name: hello, fake: {log: ["hello {{ .Params.size }} from {{ .Run.Branch }}"]}}
`),
				mustPipeline(t, "metadata: {name: slow}\nstages:\n  - {name: a, fake: {log: [sleeping], sleep: 1m}}\n"),
				mustPipeline(t, "metadata: {name: other, app: billing}\nstages:\n  - {name: a, fake: {}}\n"),
			}}},
		Tokens: []auth.Token{token("viewer", auth.RoleViewer, "view-token"), token("rm", auth.RoleReleaseManager, "rm-token"),
			token("admin", auth.RoleAdmin, "admin-token"), token("billing-viewer", auth.RoleViewer, "billing-token", "billing"),
			token("billing-admin", auth.RoleAdmin, "billing-admin-token", "billing")},
		Alertmanager: &hooks.AlertmanagerAuth{Bearer: "am-token", AppLabel: "app"},
	}
	intake, err := triggers.NewIntake(res.Repos, st, r, triggers.WithCounter(m.Webhook))
	if err != nil {
		t.Fatal(err)
	}
	s := New(st, r, intake, res, m, nil)
	srv := httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx); close(done) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done; st.Close() })
	return &apiTest{url: srv.URL, st: st, srv: s}
}

func (a *apiTest) do(t testing.TB, method, path, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (a *apiTest) waitRun(t *testing.T, id float64, want string) map[string]any {
	t.Helper()
	var run map[string]any
	eventually.True(t, 5*time.Second, fmt.Sprintf("run %v becoming %s", id, want), func() bool {
		_, run = a.do(t, "GET", "/api/v1/runs/"+itoa(id), "view-token", "")
		return run["status"] == want
	})
	return run
}

func itoa(f float64) string    { return strings.TrimSuffix(strings.TrimSuffix(jsonNum(f), ".0"), "e+00") }
func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestTriggerRunThenReadItBack(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	code, run := a.do(t, "POST", "/api/v1/pipelines/shop/runs", "rm-token", `{"ref": "feature/x", "params": {"size": "10ms"}}`)
	if code != 201 || run["pipeline"] != "shop" {
		t.Fatalf("trigger: %d %v", code, run)
	}
	trig := run["trigger"].(map[string]any)
	if trig["ref"] != "refs/heads/feature/x" || trig["actor"] != "rm" || trig["event"] != "manual" {
		t.Errorf("trigger = %v", trig)
	}
	if src := run["source"].(map[string]any); src["pushed"] != false || src["file"] == "" || strings.Contains(src["file"].(string), "/") {
		t.Errorf("source = %v, want the operator's file by its name", src)
	}
	done := a.waitRun(t, run["id"].(float64), "succeeded")
	st := done["stages"].([]any)[0].(map[string]any)
	if st["status"] != "succeeded" || len(st["attempts"].([]any)) != 1 || len(done["events"].([]any)) < 3 {
		t.Errorf("run detail = %v", done)
	}
	code, logs := a.do(t, "GET", "/api/v1/runs/"+itoa(run["id"].(float64))+"/logs", "view-token", "")
	lines := logs["lines"].([]any)
	if code != 200 || len(lines) == 0 || lines[0].(map[string]any)["text"] != "hello 10ms from feature/x" || logs["done"] != true {
		t.Errorf("logs: %d %v", code, logs)
	}
	code, list := a.do(t, "GET", "/api/v1/runs?pipeline=shop&status=succeeded", "view-token", "")
	if code != 200 || len(list["runs"].([]any)) != 1 {
		t.Errorf("list: %d %v", code, list)
	}
	// The operator's pipeline was read from no repository; a hostile name
	// is a name like any other.
	for _, repo := range []string{"shop", "%27%20OR%201=1--", strings.Repeat("x", 4096)} {
		if code, list := a.do(t, "GET", "/api/v1/runs?repository="+repo, "view-token", ""); code != 200 || len(list["runs"].([]any)) != 0 {
			t.Errorf("runs of repository %.20s: %d %v", repo, code, list)
		}
	}
	code, audit := a.do(t, "GET", "/api/v1/audit", "admin-token", "")
	entries := audit["entries"].([]any)
	if code != 200 || len(entries) != 1 || entries[0].(map[string]any)["Action"] != "run.trigger" || entries[0].(map[string]any)["Actor"] != "rm" {
		t.Errorf("audit: %d %v", code, audit)
	}
}

func TestAuthRolesAndScopes(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	_, run := a.do(t, "POST", "/api/v1/pipelines/shop/runs", "rm-token", `{"params": {"size": "1ms"}}`)
	id := itoa(run["id"].(float64))
	tests := []struct {
		method, path, tok string
		want              int
	}{
		{"GET", "/api/v1/runs", "", 401},
		{"GET", "/api/v1/runs", "wrong-token", 401},
		{"GET", "/api/v1/runs", "view-token", 200},
		{"POST", "/api/v1/pipelines/shop/runs", "view-token", 403},
		{"POST", "/api/v1/runs/" + id + "/cancel", "view-token", 403},
		{"GET", "/api/v1/audit", "rm-token", 403},
		{"GET", "/api/v1/audit", "admin-token", 200},
		{"GET", "/api/v1/runs/" + id, "billing-token", 404}, // outside its apps: as if absent
		{"POST", "/api/v1/pipelines/other/runs", "rm-token", 201},
		{"GET", "/healthz", "", 200},
	}
	for _, tt := range tests {
		if code, body := a.do(t, tt.method, tt.path, tt.tok, ""); code != tt.want {
			t.Errorf("%s %s with %q: %d %v, want %d", tt.method, tt.path, tt.tok, code, body, tt.want)
		}
	}
	_, list := a.do(t, "GET", "/api/v1/runs", "billing-token", "")
	for _, r := range list["runs"].([]any) {
		if r.(map[string]any)["app"] != "billing" {
			t.Errorf("scoped token sees %v", r)
		}
	}
	if denied := a.deniedRows(t); denied != 2 {
		t.Errorf("%d refused mutating calls audited, want 2", denied)
	}
}

func TestBadAPIInput(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	tests := []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"GET", "/api/v1/runs/abc", "", 400, "is not a positive number"},
		{"GET", "/api/v1/runs/-3", "", 400, "is not a positive number"},
		{"GET", "/api/v1/runs/99999", "", 404, "run 99999 not found"},
		{"GET", "/api/v1/runs?limit=100000", "", 400, "limit"},
		{"GET", "/api/v1/runs?status=exploded", "", 400, "is not one of"},
		{"POST", "/api/v1/pipelines/shop/runs", `{"ref": "--upload-pack=x"}`, 400, "not a valid git ref"},
		{"POST", "/api/v1/pipelines/shop/runs", `{"refs": "main"}`, 400, "unknown field"},
		{"POST", "/api/v1/pipelines/shop/runs", `{"ref": "main"`, 400, "malformed request body"},
		{"POST", "/api/v1/pipelines/shop/runs", `{"params": {"colour": "red"}}`, 400, "declares no such parameter"},
		{"POST", "/api/v1/pipelines/shop/runs", `{"sha": "zz"}`, 400, "not a commit id"},
		{"POST", "/api/v1/pipelines/shop/runs", `{"ref": "` + strings.Repeat("a", 70<<10) + `"}`, 400, "at most"},
		{"POST", "/api/v1/pipelines/nope/runs", "", 404, "pipeline nope not found"},
		{"GET", "/api/v1/nothing", "", 404, "no such endpoint"},
	}
	for _, tt := range tests {
		code, body := a.do(t, tt.method, tt.path, "admin-token", tt.body)
		if code != tt.want || !strings.Contains(body["error"].(string), tt.msg) {
			t.Errorf("%s %s %.40q: %d %v, want %d %q", tt.method, tt.path, tt.body, code, body, tt.want, tt.msg)
		}
	}
	if runs, _ := a.st.ListRuns(context.Background(), store.RunFilter{}); len(runs) != 0 {
		t.Errorf("bad requests created %d runs", len(runs))
	}
}

func TestCancelAndFollowLogsOverSSE(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	_, run := a.do(t, "POST", "/api/v1/pipelines/slow/runs", "rm-token", "")
	id := itoa(run["id"].(float64))
	a.waitRun(t, run["id"].(float64), "running")
	// Until the stage has logged (a cancel before it would end the run with no log).
	eventually.True(t, 5*time.Second, "the stage logging", func() bool {
		_, logs := a.do(t, "GET", "/api/v1/runs/"+id+"/logs", "view-token", "")
		return strings.Contains(fmt.Sprint(logs), "sleeping")
	})

	req, _ := http.NewRequest("GET", a.url+"/api/v1/runs/"+id+"/logs?follow=1", nil)
	req.Header.Set("Authorization", "Bearer view-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	if code, body := a.do(t, "POST", "/api/v1/runs/"+id+"/cancel", "rm-token", ""); code != 202 {
		t.Fatalf("cancel: %d %v", code, body)
	}
	events := readSSE(t, resp.Body)
	if len(events) < 2 || events[0].name != "log" || !strings.Contains(events[0].data, "sleeping") || events[len(events)-1].name != "end" ||
		!strings.Contains(events[len(events)-1].data, `"status":"cancelled"`) {
		t.Errorf("events = %+v", events)
	}
	if code, body := a.do(t, "POST", "/api/v1/runs/"+id+"/cancel", "rm-token", ""); code != 409 {
		t.Errorf("cancelling a finished run: %d %v", code, body)
	}
}

type sseEvent struct{ id, name, data string }

func readSSE(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var (
		out []sseEvent
		cur sseEvent
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out = append(out, cur)
			if cur.name == "end" {
				return out
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	return out
}

func TestMetricsReportRunsAndWebhooks(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	_, run := a.do(t, "POST", "/api/v1/pipelines/other/runs", "rm-token", "")
	a.waitRun(t, run["id"].(float64), "succeeded")
	http.Post(a.url+"/hooks/github", "application/json", strings.NewReader("{}")) // unsigned
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`slipway_runs{status="succeeded"} 1`, `slipway_queue_depth 0`,
		`slipway_runs_finished_total{status="succeeded"} 1`,
		`slipway_stage_duration_seconds_count{kind="fake",status="succeeded"} 1`,
		`slipway_webhook_deliveries_total{forge="github",result="unauthorized"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A token limited to some apps reads only their deliveries and audit
// entries.
func TestDeliveriesAndAuditAreScoped(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	a.do(t, "POST", "/api/v1/pipelines/shop/runs", "admin-token", "")
	a.do(t, "POST", "/api/v1/pipelines/other/runs", "admin-token", "")
	body := []byte(`{"ref": "refs/heads/main", "after": "` + strings.Repeat("a", 40) + `", "repository": {"clone_url": "https://git.example.com/shop.git"}}`)
	m := hmac.New(sha256.New, []byte("s"))
	m.Write(body)
	req, _ := http.NewRequest("POST", a.url+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "d-1")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	count := func(path, key, token string) int {
		code, out := a.do(t, "GET", path, token, "")
		if code != 200 {
			t.Fatalf("GET %s as %s: %d %v", path, token, code, out)
		}
		return len(out[key].([]any))
	}
	if all, billing := count("/api/v1/audit", "entries", "admin-token"), count("/api/v1/audit", "entries", "billing-admin-token"); all != 2 || billing != 1 {
		t.Errorf("audit entries: admin sees %d (want 2), billing admin %d (want 1: the run of billing)", all, billing)
	}
	if all, billing := count("/api/v1/deliveries", "deliveries", "admin-token"), count("/api/v1/deliveries", "deliveries", "billing-admin-token"); all != 1 || billing != 0 {
		t.Errorf("deliveries: admin sees %d (want 1), billing admin %d (want 0)", all, billing)
	}
}

// One token holds at most api.MaxFollowersPerToken live log streams.
func TestFollowersPerTokenAreBounded(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	_, run := a.do(t, "POST", "/api/v1/pipelines/slow/runs", "rm-token", "")
	id := itoa(run["id"].(float64))
	open := func() *http.Response {
		req, _ := http.NewRequest("GET", a.url+"/api/v1/runs/"+id+"/logs?follow=1", nil)
		req.Header.Set("Authorization", "Bearer view-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var streams []*http.Response
	for range api.MaxFollowersPerToken {
		streams = append(streams, open())
	}
	extra := open()
	extra.Body.Close()
	if extra.StatusCode != http.StatusTooManyRequests {
		t.Errorf("stream %d of one token: %d, want 429", api.MaxFollowersPerToken+1, extra.StatusCode)
	}
	streams[0].Body.Close()
	// The closed stream's slot is given back once the server sees it gone.
	eventually.True(t, 2*time.Second, "a closed stream's slot given back", func() bool {
		again := open()
		again.Body.Close()
		return again.StatusCode == http.StatusOK
	})
	for _, s := range streams[1:] {
		if s.StatusCode != 200 {
			t.Errorf("stream: %d", s.StatusCode)
		}
		s.Body.Close()
	}
}

// A token refused in a loop costs the audit log one row a minute: the
// first refusal is written, those after it within the minute are counted,
// and the next row written says how many there were.
func TestRefusedCallsAreAuditedOnceAMinute(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	for range 200 {
		if code, _ := a.do(t, "POST", "/api/v1/pipelines/shop/runs", "view-token", ""); code != 403 {
			t.Fatalf("a viewer's trigger: %d, want 403", code)
		}
	}
	if denied := a.deniedRows(t); denied != 1 {
		t.Errorf("200 refusals within a minute wrote %d audit rows, want 1", denied)
	}
	// Paths the caller writes, each new, long, or carrying words of another
	// app's scope: still one row per route, naming the route, not the path.
	for i := range 100 {
		a.do(t, "POST", fmt.Sprintf("/api/v1/runs/%d/cancel", 1000+i), "view-token", "")
		a.do(t, "POST", "/api/v1/apps/"+strings.Repeat("a", 2000+i)+"/promote", "view-token", "")
		a.do(t, "POST", "/api/v1/runs/x%20app%2Fbilling%20run%2F2%20/cancel", "view-token", "")
	}
	if denied := a.deniedRows(t); denied != auth.MaxDeniedRowsPerToken {
		t.Errorf("refusals on 300 paths wrote %d audit rows in all, want the bound of one token's minute, %d", denied, auth.MaxDeniedRowsPerToken)
	}
	_, audit := a.do(t, "GET", "/api/v1/audit", "admin-token", "")
	for _, e := range audit["entries"].([]any) {
		if target := e.(map[string]any)["Target"].(string); strings.Contains(target, "aaaa") || strings.Contains(target, "x app") || len(target) > 200 {
			t.Errorf("a refusal's target quotes the path the caller wrote: %.300q", target)
		}
	}
	// A refusal aimed at billing is seen by billing's admin, with its app;
	// those that only named it in a forged path are not.
	a.do(t, "POST", "/api/v1/apps/billing/promote", "billing-token", "")
	_, scoped := a.do(t, "GET", "/api/v1/audit", "billing-admin-token", "")
	if got := fmt.Sprint(scoped["entries"]); strings.Count(got, "Action:denied") != 1 || !strings.Contains(got, "Target:POST /api/v1/apps/{app}/promote app/billing") {
		t.Errorf("an admin scoped to billing sees these refusals: %s", got)
	}
}

// deniedRows counts the refused calls in the audit log.
func (a *apiTest) deniedRows(t *testing.T) int {
	t.Helper()
	_, audit := a.do(t, "GET", "/api/v1/audit", "admin-token", "")
	denied := 0
	for _, e := range audit["entries"].([]any) {
		if e.(map[string]any)["Action"] == "denied" {
			denied++
		}
	}
	return denied
}

// pushedSource is a pipeline read from a repository (as RepoFileSource
// reads one), without git.
type pushedSource struct{ p *pipeline.Pipeline }

func (s pushedSource) Load(context.Context, string, string) (*pipeline.Pipeline, error) {
	return s.p, nil
}
func (s pushedSource) String() string { return s.p.File }

func pushed(t *testing.T, repo, src string) triggers.Source {
	t.Helper()
	p, err := pipeline.ParseUntrusted(repo+":.slipway.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	return pushedSource{p}
}

// A person who can push to one repository cannot take another team's
// pipeline name for manual runs: the operator's pipelines are found
// first, a token sees only its apps' pipelines, and a name pushed by two
// repositories needs the one meant named.
func TestAPushedNameTakesNoOtherTeamsPipeline(t *testing.T) {
	t.Parallel()
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kinds := stages.NewRegistry()
	kinds.Register("fake", fake.New(nil))
	r, err := runner.New(st, kinds, runner.WithWorkRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	stagesLine := "on: {manual: {}}\nstages: [{name: a, fake: {}}]\n"
	res := &Resolved{
		Repos: []*triggers.Repo{
			{Config: engineconfig.Repository{Name: "mine", URL: "https://git.example.com/mine.git", Forge: "github", Apps: []engineconfig.AppBinding{{Name: "mine"}}}, Secret: "s",
				Sources: []triggers.Source{pushed(t, "mine", "metadata: {name: other-deploy, app: mine}\n"+stagesLine),
					pushed(t, "mine", "metadata: {name: ops-deploy, app: mine}\n"+stagesLine)}},
			{Config: engineconfig.Repository{Name: "other", URL: "https://git.example.com/other.git", Forge: "github", Apps: []engineconfig.AppBinding{{Name: "other"}}}, Secret: "s",
				Sources: []triggers.Source{pushed(t, "other", "metadata: {name: other-deploy, app: other}\n"+stagesLine),
					mustPipeline(t, "metadata: {name: ops-deploy, app: other}\n"+stagesLine)}},
		},
		Tokens: []auth.Token{token("admin", auth.RoleAdmin, "admin-token"), token("other-bot", auth.RoleReleaseManager, "bot-token", "other")},
	}
	intake, err := triggers.NewIntake(res.Repos, st, r)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, r, intake, res, NewMetrics(st), nil).Handler())
	defer srv.Close()
	a := &apiTest{url: srv.URL, st: st}
	for _, tt := range []struct {
		tok, name, body string
		code            int
		app, repo       string
	}{
		{"bot-token", "other-deploy", "", 201, "other", "https://git.example.com/other.git"},
		{"admin-token", "other-deploy", "", 409, "", ""},
		{"admin-token", "other-deploy", `{"repository": "other"}`, 201, "other", "https://git.example.com/other.git"},
		{"admin-token", "other-deploy", `{"repository": "mine"}`, 201, "mine", "https://git.example.com/mine.git"},
		{"admin-token", "ops-deploy", "", 201, "other", "https://git.example.com/other.git"}, // the operator's
		{"bot-token", "ops-deploy", `{"repository": "mine"}`, 404, "", ""},
	} {
		code, run := a.do(t, "POST", "/api/v1/pipelines/"+tt.name+"/runs", tt.tok, tt.body)
		if code != tt.code {
			t.Errorf("%s triggers %s %s: %d %v, want %d", tt.tok, tt.name, tt.body, code, run, tt.code)
			continue
		}
		if code == 201 && (run["app"] != tt.app || run["trigger"].(map[string]any)["repo"] != tt.repo) {
			t.Errorf("%s triggers %s %s: a run of app %v from %v, want %s from %s", tt.tok, tt.name, tt.body, run["app"], run["trigger"].(map[string]any)["repo"], tt.app, tt.repo)
		}
		if code == 409 && !strings.Contains(fmt.Sprint(run), "is read from more than one repository (mine, other)") {
			t.Errorf("the ambiguous name's answer: %v", run)
		}
	}
}
