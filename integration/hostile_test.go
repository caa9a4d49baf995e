package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/integration/gitserver"
)

// hostilePipeline is a pipeline file a pusher writes into team-a's
// repository; %s is spliced in under metadata, %s under stages.
const hostilePipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: team-a%s}
on: {push: {branches: ["**"]}}
%s
stages:
  - {name: show, fake: {log: ["token={{ .Secrets.DEPLOY_TOKEN }}"], outputs: {leak: "{{ .Secrets.DEPLOY_TOKEN }}"}}}
`

// teamB is the operator's pipeline of another team, holding its
// concurrency group with a long stage.
const teamB = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: team-b}
on: {push: {branches: [main]}}
concurrency: {group: deploy-team-b, policy: queue}
stages:
  - {name: slow, fake: {sleep: 1m}}
`

// What a person with push access to one watched repository can do with a
// pipeline file: name the secrets the operator granted that repository for
// the ref pushed — nothing else. Each attack is refused, visibly, and the
// legitimate use beside it still works.
func TestHostilePushesAreRefused(t *testing.T) {
	dir := t.TempDir()
	git, err := gitserver.Start(context.Background(), filepath.Join(dir, "git"))
	must(t, err)
	defer git.Close()
	repoURL, err := git.CreateRepo("team-a")
	must(t, err)
	wt, err := gitserver.Clone(repoURL, filepath.Join(dir, "wt"))
	must(t, err)
	writeFile(t, dir, "team-b.yaml", teamB)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	writeFile(t, dir, "deploy-token", "deploy-token-value-42\n")
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: data
repositories:
  - name: team-a
    url: %q
    forge: github
    webhookSecret: {file: hook-secret}
    pipelines: [{path: .slipway.yaml}]
    apps: [{name: team-a}]
    secrets:
      - {name: DEPLOY_TOKEN, from: {file: deploy-token}, branches: [main]}
  - {name: team-b, url: "https://git.example.com/team-b.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: team-b.yaml}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, repoURL))
	eng := startServe(t, config)

	// push commits a pipeline file on branch and delivers the push.
	n := 0
	push := func(branch, pipelineFile string) map[string]any {
		t.Helper()
		sha, err := wt.Commit(branch, "pipeline", map[string]string{".slipway.yaml": pipelineFile})
		must(t, err)
		must(t, wt.Push(branch))
		n++
		code, ans := signedPush(t, eng.url, fmt.Sprintf("d-%d", n), "s3cret", map[string]any{"ref": "refs/heads/" + branch,
			"after": sha, "repository": map[string]any{"clone_url": repoURL}})
		if code != 202 && code != 500 {
			t.Fatalf("push to %s: %d %v", branch, code, ans)
		}
		return ans
	}
	runOf := func(ans map[string]any) (status, reason, logs string) {
		t.Helper()
		runs, _ := ans["runs"].([]any)
		if len(runs) != 1 {
			t.Fatalf("push started %d runs: %v", len(runs), ans)
		}
		id := int(runs[0].(float64))
		var run struct{ Status, Reason string }
		waitFor(t, fmt.Sprintf("run %d to end", id), func() bool {
			eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", id), "ops-token-value", &run)
			return run.Status != "queued" && run.Status != "running"
		})
		out, _ := cli(t, "logs", fmt.Sprint(id), "--server", eng.url, "--token", "ops-token-value")
		return run.Status, run.Reason, out
	}

	t.Run("a secret source in a repository's pipeline is refused before any run", func(t *testing.T) {
		ans := push("feature", fmt.Sprintf(hostilePipeline, "", "secrets: {DEPLOY_TOKEN: {env: HOME}, ENV: {file: /proc/self/environ}}"))
		if !strings.Contains(fmt.Sprint(ans["matches"]), "may not say where a secret comes from") || len(fmt.Sprint(ans["runs"])) > 5 {
			t.Errorf("delivery: %v", ans)
		}
	})
	t.Run("a secret granted for main only is refused on a branch", func(t *testing.T) {
		ans := push("feature", fmt.Sprintf(hostilePipeline, "", "secrets: [DEPLOY_TOKEN]"))
		status, reason, logs := runOf(ans)
		want := `secret DEPLOY_TOKEN is not granted to repository team-a for ref "refs/heads/feature" (push)`
		if status != "failed" || !strings.Contains(reason, want) || !strings.Contains(fmt.Sprint(ans["matches"]), want) {
			t.Errorf("run %s %q, delivery %v; want failed with %q", status, reason, ans["matches"], want)
		}
		if strings.Contains(logs, "token=") {
			t.Errorf("a stage of a refused run ran:\n%s", logs)
		}
	})
	t.Run("the same pipeline on main gets the granted secret, masked", func(t *testing.T) {
		ans := push("main", fmt.Sprintf(hostilePipeline, "", "secrets: [DEPLOY_TOKEN]"))
		status, reason, logs := runOf(ans)
		if status != "succeeded" || !strings.Contains(logs, "token=***") || strings.Contains(logs, "deploy-token-value-42") {
			t.Errorf("run %s %q:\n%s", status, reason, logs)
		}
		var run struct {
			Stages []struct{ Outputs map[string]string }
		}
		eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%v", ans["runs"].([]any)[0]), "ops-token-value", &run)
		if len(run.Stages) != 1 || run.Stages[0].Outputs["leak"] != "***" {
			t.Errorf("stage outputs as served: %+v", run.Stages)
		}
	})
	t.Run("an app bound to another repository is refused", func(t *testing.T) {
		ans := push("main", fmt.Sprintf(hostilePipeline, ", app: team-b", ""))
		status, reason, _ := runOf(ans)
		if status != "failed" || !strings.Contains(reason, "app team-b is not bound to repository team-a") {
			t.Errorf("run %s %q", status, reason)
		}
	})
	t.Run("another repository's concurrency group cannot be cancelled", func(t *testing.T) {
		code, ans := signedPush(t, eng.url, "team-b-1", "s3cret", map[string]any{"ref": "refs/heads/main", "after": strings.Repeat("b", 40),
			"repository": map[string]any{"clone_url": "https://git.example.com/team-b.git"}})
		if code != 202 {
			t.Fatalf("team-b push: %d %v", code, ans)
		}
		teamBRun := int(ans["runs"].([]any)[0].(float64))
		var run struct{ Status string }
		waitFor(t, "team-b's run to start", func() bool {
			eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", teamBRun), "ops-token-value", &run)
			return run.Status == "running"
		})
		status, _, _ := runOf(push("main", fmt.Sprintf(hostilePipeline, "", "secrets: [DEPLOY_TOKEN]\nconcurrency: {group: deploy-team-b, policy: cancel-previous}")))
		eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", teamBRun), "ops-token-value", &run)
		if status != "succeeded" || run.Status != "running" {
			t.Errorf("team-a's run %s (want succeeded, not queued behind team-b); team-b's run %s (want still running)", status, run.Status)
		}
	})
}
