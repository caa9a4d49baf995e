package integration

import (
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
	e := startSlipway(t, "serve", "--config", config)
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

func signedPush(t *testing.T, url, id, secret string, payload map[string]any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(payload)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	req, _ := http.NewRequest("POST", url+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(slipwayBin, args...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// The engine as a process: a signed push over loopback starts a run, the
// CLI reads it back, SIGTERM hands the running stage back to the queue, and
// the next engine finishes it. A push to a repository whose pipeline lives
// inside it is read over real git HTTP at the pushed commit.
func TestServeWebhookToRunAndGracefulRestart(t *testing.T) {
	dir := t.TempDir()
	git, err := gitserver.Start(context.Background(), filepath.Join(dir, "git"))
	must(t, err)
	defer git.Close()
	repoURL, err := git.CreateRepo("site")
	must(t, err)
	wt, err := gitserver.Clone(repoURL, filepath.Join(dir, "wt"))
	must(t, err)
	sha, err := wt.Commit("main", "add pipeline", map[string]string{".slipway/pipeline.yaml": repoPipeline})
	must(t, err)
	must(t, wt.Push("main"))

	forge := newStatusForge(t)
	writeFile(t, dir, "web.yaml", servePipeline)
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(engineHeader+`  - {name: web, url: "https://github.com/shop/web.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: web.yaml}],
     status: {token: {file: status-token}, api: %q}}
  - {name: site, url: %q, forge: github, webhookSecret: {file: hook-secret}, pipelines: [{path: .slipway/pipeline.yaml}],
     apps: [{name: from-repo}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, forge.URL, repoURL))
	writeFile(t, dir, "status-token", "status-token-value\n")
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")

	eng := startServe(t, config)
	push := map[string]any{"ref": "refs/heads/main", "before": strings.Repeat("1", 40), "after": strings.Repeat("a", 40),
		"repository": map[string]any{"clone_url": "https://github.com/shop/web.git"}, "pusher": map[string]any{"name": "dev"},
		"commits": []any{map[string]any{"added": []string{"web/index.html"}, "removed": []string{}, "modified": []string{}}}}
	code, ans := signedPush(t, eng.url, "delivery-1", "s3cret", push)
	if code != 202 || len(ans["runs"].([]any)) != 1 {
		t.Fatalf("push: %d %v", code, ans)
	}
	if code, again := signedPush(t, eng.url, "delivery-1", "s3cret", push); code != 200 || again["duplicate"] != true {
		t.Errorf("redelivery: %d %v", code, again)
	}
	sitePush := map[string]any{"ref": "refs/heads/main", "after": sha, "repository": map[string]any{"clone_url": repoURL}}
	if code, ans := signedPush(t, eng.url, "delivery-2", "s3cret", sitePush); code != 202 || len(ans["runs"].([]any)) != 1 {
		t.Fatalf("push to the repo with its own pipeline: %d %v", code, ans)
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
	// Run 1's commit went pending → running → success on GitHub, across
	// the restart, through one 502 retried (which stages' starts are seen
	// depends on timing: a state that changed while its report waited is
	// replaced by the newer one); only the repository that asks for
	// statuses reports them.
	waitFor(t, "run 1's success on its commit", func() bool { return strings.Contains(forge.said(), "success succeeded in") })
	said := forge.said()
	for _, want := range []string{
		"POST /repos/shop/web/statuses/" + strings.Repeat("a", 40) + " Bearer status-token-value slipway/web https://slipway.test/runs/1 pending ",
		"pending running",
		"success succeeded in",
	} {
		if !strings.Contains(said, want) {
			t.Errorf("statuses lack %q:\n%s", want, said)
		}
	}
	if n := strings.Count(said, "success"); n != 1 {
		t.Errorf("success reported %d times:\n%s", n, said)
	}
	if strings.Contains(said, "/runs/2") {
		t.Errorf("the repository without status: reported:\n%s", said)
	}
	out, _ = cli(t, append([]string{"logs", "1"}, env...)...)
	if !strings.Contains(out, "commit status: github answered HTTP 502; retrying in 1s") || !strings.Contains(out, "commit status: slipway/web success on github") {
		t.Errorf("run 1's log lacks its commit statuses:\n%s", out)
	}
	resp, err := http.Get(eng2.url + "/metrics")
	must(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `slipway_commit_status_requests_total{forge="github",result="ok"}`) {
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

// statusForge is GitHub's commit status API as an httptest server: it
// records each request in a line and answers the first with a 502.
type statusForge struct {
	*httptest.Server
	mu    sync.Mutex
	lines []string
}

func newStatusForge(t *testing.T) *statusForge {
	f := &statusForge{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&b)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.lines = append(f.lines, strings.Join([]string{r.Method, r.URL.Path, r.Header.Get("Authorization"), b["context"], b["target_url"], b["state"], b["description"]}, " "))
		if len(f.lines) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *statusForge) said() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
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
