package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// seedBigRun stores, before the engine starts, a finished run of app shop
// whose release holds measurements and whose log holds lines.
func seedBigRun(b *testing.B, data string, measurements, lines int) int64 {
	ctx := context.Background()
	must(b, os.MkdirAll(data, 0o755))
	st := openStore(b, data)
	defer st.Close()
	run := &store.Run{Pipeline: "shop", App: "shop", PipelineFile: "p.yaml", PipelineSource: []byte("x"), Trigger: store.Trigger{Event: "manual", Actor: "bench"},
		Status: store.RunQueued, CreatedAt: time.Now()}
	must(b, st.CreateRun(ctx, &store.NewRun{Run: run, Stages: []store.Stage{{Index: 0, Name: "release", Kind: "canary", Status: store.StagePending}}}))
	_, err := st.TransitionRun(ctx, run.ID, []store.RunStatus{store.RunQueued}, store.RunFailed, "seeded for a benchmark", time.Now())
	must(b, err)
	data5, _ := json.Marshal(release.Progress{Image: "registry.local/shop@sha256:" + strings.Repeat("ab", 32),
		Steps: []release.PlannedStep{{Weight: 10, Interval: "1m"}, {Weight: 50, Interval: "1m"}}})
	must(b, st.SaveRelease(ctx, &store.Release{RunID: run.ID, App: "shop", Checkpoint: release.Checkpoint{State: release.RolledBack, Step: 1, Weight: 50, Reason: "seeded", Data: data5}, UpdatedAt: time.Now()}))
	min := 99.0
	t0 := time.Now().Add(-time.Hour)
	for i := range measurements {
		must(b, st.AddMeasurement(ctx, &store.Measurement{RunID: run.ID, Step: i * 2 / measurements, Weight: 10, Metric: []string{"success-rate", "latency-p99"}[i%2],
			Query: "q", Value: 99 + float64(i%7)/10, Min: &min, Requests: 40, Outcome: "pass", At: t0.Add(time.Duration(i) * time.Second)}))
	}
	batch := make([]store.LogLine, 0, 1000)
	for i := range lines {
		batch = append(batch, store.LogLine{RunID: run.ID, Stage: "release", Attempt: 1, Time: time.Now(), Text: fmt.Sprintf("line %d %s", i, strings.Repeat("x", 60))})
		if len(batch) == cap(batch) || i == lines-1 {
			must(b, st.AppendLogs(ctx, batch))
			batch = batch[:0]
		}
	}
	return run.ID
}

// Time to first render in Chromium, against a real `slipway serve`, of
// the release page of a release with 1,000 measurements and of the run
// page of a run with a 100,000-line log: first contentful paint and
// DOMContentLoaded, from the navigation's start.
func BenchmarkBrowserFirstRender(b *testing.B) {
	chrome, _ := needBrowser(b)
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	id := seedBigRun(b, data, 1000, 100_000)
	config := writeFile(b, dir, "slipway.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: %s
repositories:
  - {name: shop, url: "https://git.example.com/shop.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: shop.yaml}]}
tokens:
  - {name: viewer, role: viewer, secret: {file: view-token}}
`, data))
	writeFile(b, dir, "hook-secret", "s")
	writeFile(b, dir, "shop.yaml", "apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\nstages:\n  - {name: clone, clone: {}}\n")
	writeFile(b, dir, "view-token", "view-token")
	eng := startServe(b, config)
	tab := newTab(b, chrome)
	login(b, tab, eng.url, "view-token")
	for _, p := range []struct{ name, path string }{
		{"release-1000-measurements", fmt.Sprintf("/releases/%d", id)},
		{"run-100k-log-lines", fmt.Sprintf("/runs/%d", id)},
	} {
		b.Run(p.name, func(b *testing.B) {
			var fcp, dcl float64
			for b.Loop() {
				var t struct{ FCP, DCL float64 }
				run(b, tab, "loading "+p.path, chromedp.Navigate(eng.url+p.path), chromedp.WaitReady("body", chromedp.ByQuery),
					chromedp.Poll(`(() => { const p = performance.getEntriesByName("first-contentful-paint")[0];
						const n = performance.getEntriesByType("navigation")[0];
						return p && n && n.domContentLoadedEventEnd > 0 ? {FCP: p.startTime, DCL: n.domContentLoadedEventEnd} : null })()`, &t))
				fcp += t.FCP
				dcl += t.DCL
			}
			b.ReportMetric(fcp/float64(b.N), "first-paint-ms")
			b.ReportMetric(dcl/float64(b.N), "dom-loaded-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
