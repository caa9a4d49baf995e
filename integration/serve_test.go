package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/internal/eventually"
)

const servePipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: web}
on:
  push: {branches: [main], paths: ["web/**"]}
  manual: {}
stages:
  - {name: build, fake: {log: ["building {{ .Run.ShortSHA }}"], outputs: {digest: "sha256:beef"}}}
  - {name: slow, fake: {log: ["deploying {{ .Stages.build.digest }}"], sleep: 1m, sleepAttempts: [1]}}
`

// engineHeader begins the engine configs of the tests: loopback, data
// beside the config, links to https://slipway.test; repositories follow.
const engineHeader = `apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
url: https://slipway.test
data: data
repositories:
`

const repoPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: from-repo}
on: {push: {branches: [main]}}
stages:
  - {name: hello, fake: {log: ["pipeline read from the repository"]}}
`

var slowRunning = regexp.MustCompile(`slow\s+fake\s+running`)

// engineProc is a `slipway serve` process.
type engineProc struct {
	*engine
	url string
}

func startServe(t testing.TB, config string) *engineProc {
	t.Helper()
	return startServeEnv(t, nil, config)
}

// startServeEnv is startServe with more environment variables.
func startServeEnv(t testing.TB, env []string, config string) *engineProc {
	t.Helper()
	e := startSlipwayEnv(t, env, "serve", "--config", config)
	re := regexp.MustCompile(`slipway serving on (http://\S+)`)
	for range 500 {
		if m := re.FindStringSubmatch(e.out.String()); m != nil {
			return &engineProc{engine: e, url: m[1]}
		}
		select {
		case <-e.waited:
			t.Fatalf("slipway serve exited:\n%s", e.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("slipway serve did not start:\n%s", e.out.String())
	return nil
}

// metrics is what the engine's /metrics says.
func (e *engineProc) metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return string(b)
}

func (e *engineProc) api(t testing.TB, method, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(slipwayBin, args...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// The engine as a process: a git push to Gitea, delivered by Gitea,
// starts a run; the CLI reads it back; SIGTERM hands the running stage
// back to the queue, and the next engine finishes it — and the commit's
// statuses on Gitea follow it across the restart, through a server error
// retried. A push to a repository whose pipeline lives inside it is read
// over Gitea's git HTTP at the pushed commit.
func TestServeWebhookToRunAndGracefulRestart(t *testing.T) {
	offNode(t)
	dir := t.TempDir()
	g := needGitea(t, filepath.Join(dir, "gitea"))
	ctx := context.Background()
	must(t, g.CreateOrg(ctx, "shop"))
	webURL, err := g.CreateRepo(ctx, "shop", "web")
	must(t, err)
	siteURL, err := g.CreateRepo(ctx, "shop", "site")
	must(t, err)
	proxy := newStatusProxy(t, g.URL)
	writeFile(t, dir, "web.yaml", servePipeline)
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(engineHeader+`  - {name: web, url: %q, forge: gitea, webhookSecret: {file: hook-secret}, pipelines: [{file: web.yaml}],
     status: {token: {file: gitea-token}, api: %q}}
  - {name: site, url: %q, forge: gitea, webhookSecret: {file: hook-secret}, token: {file: gitea-token}, pipelines: [{path: .slipway/pipeline.yaml}],
     apps: [{name: from-repo}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, webURL, proxy.URL+"/api/v1", siteURL))
	writeFile(t, dir, "gitea-token", g.Token+"\n")
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")

	eng := startServe(t, config)
	for _, repo := range []string{"web", "site"} {
		_, err := g.AddWebhook(ctx, "shop", repo, eng.url+"/hooks/gitea", "s3cret", "push")
		must(t, err)
	}
	web, err := gitserver.Clone(g.CloneURLWithToken(webURL), filepath.Join(dir, "web"))
	must(t, err)
	sha, err := web.Commit("main", "a page", map[string]string{"web/index.html": "<h1>shop</h1>"})
	must(t, err)
	must(t, web.Push("main"))
	if d := delivered(t, eng, sha); d.Status != "processed" || fmt.Sprint(d.runs()) != "[1]" || d.Ref != "refs/heads/main" {
		t.Fatalf("push to web: %+v", d)
	}
	site, err := gitserver.Clone(g.CloneURLWithToken(siteURL), filepath.Join(dir, "site"))
	must(t, err)
	siteSHA, err := site.Commit("main", "add pipeline", map[string]string{".slipway/pipeline.yaml": repoPipeline})
	must(t, err)
	must(t, site.Push("main"))
	if d := delivered(t, eng, siteSHA); fmt.Sprint(d.runs()) != "[2]" {
		t.Fatalf("push to the repo with its own pipeline: %+v", d)
	}

	env := []string{"--server", eng.url, "--token", "ops-token-value"}
	waitFor(t, "run 1 to reach its slow stage", func() bool {
		out, _ := cli(t, append([]string{"runs", "show", "1"}, env...)...)
		return slowRunning.MatchString(out)
	})
	out, code2 := cli(t, append([]string{"runs"}, env...)...)
	if code2 != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "from-repo") {
		t.Errorf("slipway runs: %d\n%s", code2, out)
	}
	out, _ = cli(t, append([]string{"logs", "2"}, env...)...)
	if !strings.Contains(out, "pipeline read from the repository") {
		t.Errorf("logs of the repo pipeline run:\n%s", out)
	}
	out, code2 = cli(t, append([]string{"runs", "show", "1", "-o", "json"}, env...)...)
	if code2 != 0 || !strings.Contains(out, `"status": "running"`) {
		t.Errorf("runs show -o json: %d\n%s", code2, out)
	}

	// SIGTERM: intake stops, the running stage is interrupted and queued again.
	must(t, eng.cmd.Process.Signal(syscall.SIGTERM))
	if code := eng.waitExit(t); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM:\n%s", code, eng.out.String())
	}
	eng2 := startServe(t, config)
	out, code2 = cli(t, append([]string{"logs", "1", "-f"}, env[:0]...)...) // no server flag: must fail cleanly
	if code2 == 0 {
		t.Errorf("logs without a reachable server succeeded:\n%s", out)
	}
	env[1] = eng2.url
	out, code2 = cli(t, append([]string{"logs", "1", "-f"}, env...)...)
	if code2 != 0 || !strings.Contains(out, "deploying sha256:beef") || !strings.Contains(out, "run 1 succeeded") {
		t.Errorf("logs -f after restart: %d\n%s", code2, out)
	}
	var run struct {
		Status string `json:"status"`
		Stages []struct {
			Attempts []struct{ Status string } `json:"attempts"`
		} `json:"stages"`
	}
	eng2.api(t, "GET", "/api/v1/runs/1", "ops-token-value", &run)
	if run.Status != "succeeded" || len(run.Stages[1].Attempts) != 2 || run.Stages[1].Attempts[0].Status != "interrupted" {
		t.Errorf("run 1 after restart: %+v", run)
	}
	// Run 1's commit went pending → running → success on Gitea, across
	// the restart, through one 502 retried (which stages' starts are seen
	// depends on timing: a state that changed while its report waited is
	// replaced by the newer one); only the repository that asks for
	// statuses reports them.
	final := waitStatus(t, g, sha, "success")
	said := proxy.said()
	for _, want := range []string{
		"POST /api/v1/repos/shop/web/statuses/" + sha + " token " + g.Token + " slipway/web https://slipway.test/runs/1 pending ",
		"pending running",
		"success succeeded in",
	} {
		if !strings.Contains(said, want) {
			t.Errorf("statuses lack %q:\n%s", want, said)
		}
	}
	if n := strings.Count(said, "success"); n != 1 || !strings.HasPrefix(final.Description, "succeeded in") || final.Context != "slipway/web" {
		t.Errorf("success reported %d times; on Gitea %+v:\n%s", n, final, said)
	}
	if strings.Contains(said, "/runs/2") || strings.Contains(said, siteSHA) {
		t.Errorf("the repository without status: reported:\n%s", said)
	}
	out, _ = cli(t, append([]string{"logs", "1"}, env...)...)
	if !strings.Contains(out, "commit status: gitea answered HTTP 502; retrying in 1s") || !strings.Contains(out, "commit status: slipway/web success on gitea") {
		t.Errorf("run 1's log lacks its commit statuses:\n%s", out)
	}
	if metrics := eng2.metrics(t); !strings.Contains(metrics, `slipway_commit_status_requests_total{forge="gitea",result="ok"}`) {
		t.Errorf("/metrics lacks the commit status requests:\n%s", metrics)
	}
	out, code2 = cli(t, append([]string{"trigger", "web", "-p", "nope=1"}, env...)...)
	if code2 == 0 || !strings.Contains(out, "declares no such parameter") {
		t.Errorf("trigger with a bad parameter: %d\n%s", code2, out)
	}
	out, code2 = cli(t, append([]string{"trigger", "web", "--ref", "main"}, env...)...)
	if code2 != 0 || !strings.Contains(out, "run 3 of web queued") {
		t.Errorf("trigger: %d\n%s", code2, out)
	}
	waitFor(t, "run 3 to reach its slow stage", func() bool {
		out, _ := cli(t, append([]string{"runs", "show", "3"}, env...)...)
		return slowRunning.MatchString(out)
	})
	if out, code2 = cli(t, append([]string{"cancel", "3"}, env...)...); code2 != 0 {
		t.Errorf("cancel: %d\n%s", code2, out)
	}
	out, _ = cli(t, append([]string{"logs", "3", "-f"}, env...)...)
	if !strings.Contains(out, "run 3 cancelled") {
		t.Errorf("logs -f of a cancelled run:\n%s", out)
	}
	var audit struct {
		Entries []struct{ Action, Actor string }
	}
	eng2.api(t, "GET", "/api/v1/audit", "ops-token-value", &audit)
	if len(audit.Entries) != 2 || audit.Entries[0].Action != "run.cancel" || audit.Entries[1].Action != "run.trigger" {
		t.Errorf("audit = %+v", audit)
	}
	must(t, eng2.cmd.Process.Signal(syscall.SIGTERM))
	eng2.waitExit(t)
}

// statusProxy stands in front of Gitea's API: it records each commit
// status posted through it in a line, answers the first with a 502, and
// passes every other request to Gitea.
type statusProxy struct {
	*httptest.Server
	mu    sync.Mutex
	lines []string
}

func newStatusProxy(t *testing.T, gitea string) *statusProxy {
	target, err := url.Parse(gitea)
	must(t, err)
	forward := httputil.NewSingleHostReverseProxy(target)
	p := &statusProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		r.Body = io.NopCloser(bytes.NewReader(body))
		var b map[string]string
		json.Unmarshal(body, &b)
		p.mu.Lock()
		p.lines = append(p.lines, strings.Join([]string{r.Method, r.URL.Path, r.Header.Get("Authorization"), b["context"], b["target_url"], b["state"], b["description"]}, " "))
		first := len(p.lines) == 1
		p.mu.Unlock()
		if first {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *statusProxy) said() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually.True(t, 30*time.Second, what, cond)
}
