package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

func (e *engineProc) api(t *testing.T, method, path, token string, out any) int {
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

	writeFile(t, dir, "web.yaml", servePipeline)
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: data
repositories:
  - {name: web, url: "https://github.com/shop/web.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: web.yaml}]}
  - {name: site, url: %q, forge: github, webhookSecret: {file: hook-secret}, pipelines: [{path: .slipway/pipeline.yaml}],
     apps: [{name: from-repo}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, repoURL))
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
