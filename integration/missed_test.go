package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/internal/faultreport"
)

// Pushes made while the engine was down are released once it is back.
// Three repositories on a real Gitea, each with its webhook to the
// engine and a pipeline read from the repository; the engine
// (webhooks.reconcileEvery) releases each first push as delivered, is
// killed with SIGKILL, and a push is made to each repository — Gitea
// tries to deliver them, fails, and never tries again. Started again, the
// engine lists the repositories, finds the three heads it has not seen
// and runs each push once, as a delivery of forge "reconciler"; a push
// made afterwards is delivered by Gitea and is not found twice.
func TestFaultEngineDownWhilePushesHappen(t *testing.T) {
	offNode(t)
	dir := t.TempDir()
	g := needGitea(t, filepath.Join(dir, "gitea"))
	ctx := context.Background()
	must(t, g.CreateOrg(ctx, "shop"))
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port the engine keeps across its restart, for Gitea's hooks
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	names := []string{"cart", "pay", "ship"}
	var repos strings.Builder
	urls := map[string]string{}
	for _, name := range names {
		url, err := g.CreateRepo(ctx, "shop", name)
		must(t, err)
		urls[name] = url
		fmt.Fprintf(&repos, `  - name: %s
    url: %q
    forge: gitea
    webhookSecret: {file: hook-secret}
    token: {file: gitea-token}
    pipelines: [{path: .slipway/pipeline.yaml}]
`, name, url)
	}
	config := writeFile(t, dir, "slipway.yaml", strings.Replace(engineHeader, "listen: 127.0.0.1:0", "listen: "+addr, 1)+repos.String()+
		"webhooks: {reconcileEvery: 30s}\ntokens:\n  - {name: ops, role: admin, secret: {file: ops-token}}\n")
	writeFile(t, dir, "hook-secret", "gitea-hook-secret\n")
	writeFile(t, dir, "gitea-token", g.Token+"\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	eng := startServe(t, config)
	trees := map[string]*gitserver.WorkTree{}
	for _, name := range names {
		_, err := g.AddWebhook(ctx, "shop", name, "http://"+addr+"/hooks/gitea", "gitea-hook-secret", "push")
		must(t, err)
		trees[name], err = gitserver.Clone(g.CloneURLWithToken(urls[name]), filepath.Join(dir, "wt-"+name))
		must(t, err)
	}
	// runsOf lists the engine's runs of commit sha.
	runsOf := func(eng *engineProc, sha string) []string {
		var list struct {
			Runs []struct {
				Status  string
				Trigger struct{ SHA string }
			}
		}
		eng.api(t, "GET", "/api/v1/runs", "ops-token-value", &list)
		var statuses []string
		for _, r := range list.Runs {
			if r.Trigger.SHA == sha {
				statuses = append(statuses, r.Status)
			}
		}
		return statuses
	}
	push := func(name, message string) string {
		sha, err := trees[name].Commit("main", message, map[string]string{".slipway/pipeline.yaml": strings.Replace(giteaGood, "{name: shop}", "{name: "+name+"}", 1), "CHANGE": message})
		must(t, err)
		must(t, trees[name].Push("main"))
		return sha
	}
	for _, name := range names {
		sha := push(name, "first")
		eventually.True(t, time.Minute, "the delivered push of "+name+" to succeed", func() bool { return slices.Equal(runsOf(eng, sha), []string{"succeeded"}) })
	}

	// Down: what answers the engine's address meanwhile says 503, as a
	// load balancer with no engine behind it would; Gitea's delivery of
	// each push meets it and is not tried again.
	eng.killHard(t)
	var refused atomic.Int64
	down := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Gitea-Event") == "push" {
			refused.Add(1)
		}
		http.Error(w, "no engine", http.StatusServiceUnavailable)
	})}
	downLn, err := net.Listen("tcp", addr)
	must(t, err)
	go down.Serve(downLn)
	missed := map[string]string{}
	for _, name := range names {
		missed[name] = push(name, "while the engine is down")
	}
	eventually.True(t, time.Minute, "Gitea to have tried to deliver the three pushes", func() bool { return refused.Load() >= 3 })
	down.Close()
	back := time.Now()
	eng = startServe(t, config)
	defer func() {
		if t.Failed() {
			t.Logf("the engine after its restart said:\n%s", eng.out.String())
		}
	}()
	var took []time.Duration
	for _, name := range names {
		eventually.True(t, 2*time.Minute, "the missed push of "+name+" to run", func() bool { return len(runsOf(eng, missed[name])) > 0 })
		took = append(took, time.Since(back))
	}
	lost, double := 0, 0
	for _, name := range names {
		eventually.Within(time.Minute, func() bool { return slices.Equal(runsOf(eng, missed[name]), []string{"succeeded"}) })
		runs := runsOf(eng, missed[name])
		if !slices.Contains(runs, "succeeded") {
			lost++
		}
		double += max(0, len(runs)-1)
		if !slices.Equal(runs, []string{"succeeded"}) {
			t.Errorf("the missed push of %s: runs %v, want one that succeeded", name, runs)
		}
	}
	slices.Sort(took)
	t.Logf("engine back → missed push running: p50 %s, max %s (3 repositories)", took[1].Round(time.Millisecond), took[2].Round(time.Millisecond))
	faultreport.Record(t, faultreport.Outcome{
		Fault:     "the engine killed (SIGKILL) while three repositories are pushed to; Gitea's deliveries answered 503",
		Happened:  "found by listing the repositories when the engine was back, each push released once (as a delivery of forge reconciler)",
		Recovered: took[2], RunsLost: lost, Double: double,
	})

	// A push after the restart is delivered, and not found again.
	after := push("cart", "after the restart")
	eventually.True(t, time.Minute, "the delivered push after the restart to succeed", func() bool { return slices.Equal(runsOf(eng, after), []string{"succeeded"}) })
	var deliveries struct {
		Deliveries []struct{ Forge, Repo, SHA, Status string }
	}
	eng.api(t, "GET", "/api/v1/deliveries", "ops-token-value", &deliveries)
	found := 0
	for _, d := range deliveries.Deliveries {
		if d.Forge == "reconciler" {
			found++
			if missed[d.Repo] != d.SHA || d.Status != "processed" {
				t.Errorf("a delivery found by listing: %+v", d)
			}
		}
	}
	if found != 3 {
		t.Errorf("%d pushes found by listing, want 3: %+v", found, deliveries.Deliveries)
	}
	if metrics := eng.metrics(t); !strings.Contains(metrics, `slipway_missed_pushes_found_total{repository="pay"} 1`) {
		t.Errorf("/metrics lacks the missed push of pay")
	}
}
