package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/gitea"
	"github.com/slipwayci/slipway/integration/gitserver"
)

// needGitea starts the pinned Gitea under dir, or skips (fails with CI=true).
func needGitea(t *testing.T, dir string) *gitea.Gitea {
	t.Helper()
	missing := gitea.Missing()
	need(t, len(missing) == 0, strings.Join(missing, ", "))
	g, err := gitea.Start(context.Background(), dir)
	must(t, err)
	t.Cleanup(g.Close)
	return g
}

const giteaGood = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: shop}
on: {push: {branches: [main]}}
stages:
  - {name: test, fake: {log: ["testing {{ .Run.ShortSHA }}"]}}
  - {name: build, fake: {log: ["building"], outputs: {digest: "sha256:feed"}}}
`

// A git push to a real Gitea is a release: Gitea sends the webhook it was
// given (signed with the repository's secret), the engine clones from
// Gitea with its token, reads the pipeline at the pushed commit and runs
// it, and the commit's statuses — read back through Gitea's API — say
// what happened: success for a good push, failure with the reason for a
// bad one. A branch deletion reaches the engine and starts nothing.
func TestGiteaPushToStatus(t *testing.T) {
	dir := t.TempDir()
	g := needGitea(t, filepath.Join(dir, "gitea"))
	ctx := context.Background()
	must(t, g.CreateOrg(ctx, "shop"))
	repoURL, err := g.CreateRepo(ctx, "shop", "web")
	must(t, err)

	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(engineHeader+`  - name: web
    url: %q
    forge: gitea
    webhookSecret: {file: hook-secret}
    token: {file: gitea-token}
    pipelines: [{path: .slipway/pipeline.yaml}]
    apps: [{name: shop}]
    status: {token: {file: gitea-token}}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, repoURL))
	writeFile(t, dir, "hook-secret", "gitea-hook-secret\n")
	writeFile(t, dir, "gitea-token", g.Token+"\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	eng := startServe(t, config)
	must(t, g.AddWebhook(ctx, "shop", "web", eng.url+"/hooks/gitea", "gitea-hook-secret", "push", "create", "delete"))

	wt, err := gitserver.Clone(g.CloneURLWithToken(repoURL), filepath.Join(dir, "wt"))
	must(t, err)
	good, err := wt.Commit("main", "a good change", map[string]string{".slipway/pipeline.yaml": giteaGood})
	must(t, err)
	pushed := time.Now()
	must(t, wt.Push("main"))
	first := waitStatus(t, g, good, "success")
	t.Logf("push → success on the commit: %s", time.Since(pushed).Round(time.Millisecond))
	if first.Context != "slipway/shop" || !strings.HasPrefix(first.TargetURL, "https://slipway.test/runs/") || !strings.HasPrefix(first.Description, "succeeded in") {
		t.Errorf("the good commit's status: %+v", first)
	}
	all, err := g.Statuses(ctx, "shop", "web", good)
	must(t, err)
	if states := statesOf(all); !strings.Contains(states, "pending") {
		t.Errorf("the good commit's statuses, newest first: %s", states)
	}

	bad, err := wt.Commit("main", "a bad change", map[string]string{".slipway/pipeline.yaml": strings.Replace(giteaGood,
		`{name: build, fake: {log: ["building"], outputs: {digest: "sha256:feed"}}}`, `{name: build, fake: {log: ["building"], exitCode: 2}}`, 1)})
	must(t, err)
	must(t, wt.Push("main"))
	failed := waitStatus(t, g, bad, "failure")
	if !strings.Contains(failed.Description, "stage build failed") {
		t.Errorf("the bad commit's status: %+v", failed)
	}

	type delivery struct{ ID, Event, Ref, SHA, Status, Reason string }
	var deliveries struct{ Deliveries []delivery }
	// Creating and deleting a branch are delivered too (Gitea sends
	// create and delete events, no push, for them) and start nothing.
	_, err = wt.Commit("feature", "a branch", map[string]string{"README": "x"})
	must(t, err)
	must(t, wt.Push("feature"))
	list := func() {
		deliveries.Deliveries = nil // a fresh decode: omitted fields must not keep older values
		eng.api(t, "GET", "/api/v1/deliveries", "ops-token-value", &deliveries)
	}
	waitFor(t, "the feature branch's push to be handled", func() bool {
		list()
		return slices.ContainsFunc(deliveries.Deliveries, func(d delivery) bool { return d.Ref == "refs/heads/feature" && d.Status != "received" })
	})
	must(t, wt.Push(":feature"))
	defer func() {
		if t.Failed() {
			t.Logf("deliveries: %+v\ngitea log:\n%s", deliveries, g.Log())
		}
	}()
	waitFor(t, "the branch deletion's delivery", func() bool {
		list()
		for _, d := range deliveries.Deliveries {
			if strings.Contains(d.Reason, "delete events") {
				return d.Status == "ignored"
			}
		}
		return false
	})
	for _, d := range deliveries.Deliveries {
		t.Logf("delivery %s: %s %s %s %s — %s", d.ID, d.Event, d.Ref, d.SHA, d.Status, d.Reason)
		if d.Status == "malformed" || d.Status == "rejected" {
			t.Errorf("a delivery Gitea sent was refused: %+v", d)
		}
	}
}

// waitStatus waits for commit sha's newest status to be state.
func waitStatus(t *testing.T, g *gitea.Gitea, sha, state string) gitea.Status {
	t.Helper()
	var last []gitea.Status
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		last, err = g.Statuses(context.Background(), "shop", "web", sha)
		must(t, err)
		if len(last) > 0 && last[0].State == state {
			return last[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("commit %s never became %s; statuses: %+v\ngitea log:\n%s", sha, state, last, g.Log())
	return gitea.Status{}
}

func statesOf(ss []gitea.Status) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.State+" "+s.Description)
	}
	return strings.Join(out, "; ")
}
