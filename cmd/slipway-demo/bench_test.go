package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/internal/benchreport"
	"github.com/slipwayci/slipway/server/view"
)

// From `git push` to the new version serving, on the environment make
// demo runs: 5 good changes of order-service pushed to Gitea one after
// another, each delivered by Gitea's webhook to Slipway in the cluster,
// cloned, tested and built by Kaniko in Pods, scanned by the Trivy server, written to the config repository, synced by Argo CD
// and given 10 % of the traffic. p50 and max after `git push` returned:
// the run queued, the build done, the canary serving (its first step
// verified live — the run log's "step 1 of 4" line) and promoted (100 %,
// 4 steps of 5 s).
func BenchmarkPushToCanaryServing(b *testing.B) {
	if err := demoPrerequisites(); err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "slipway")
	build := exec.Command("go", "build", "-o", bin, "../slipway")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // for Slipway's image
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building slipway: %v\n%s", err, out)
	}
	ctx := context.Background()
	d, err := startDemoEnv(ctx, dir, "127.0.0.1:0", bin, "../..", io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer d.close()
	for b.Loop() {
		phases := map[string][]time.Duration{}
		for i := range 5 {
			version := fmt.Sprintf("v%d", 10+i)
			sha, err := d.push(ctx, demoChange{title: "order-service " + version, behaviour: demoapp.Behaviour(version, 0, 0)})
			if err != nil {
				b.Fatal(err)
			}
			pushed := time.Now()
			id, err := d.runOf(ctx, sha)
			if err != nil {
				b.Fatal(err)
			}
			lines, run := d.awaitRun(ctx, b, id)
			if run.Status != "succeeded" {
				b.Fatalf("run %d of %s ended %s: %s", id, version, run.Status, run.Reason)
			}
			phases["queued"] = append(phases["queued"], run.CreatedAt.Sub(pushed))
			for _, st := range run.Stages {
				if st.Name == "build" && st.FinishedAt != nil {
					phases["built"] = append(phases["built"], st.FinishedAt.Sub(pushed))
				}
			}
			for _, l := range lines {
				if strings.Contains(l.Text, ": step 1 of ") {
					phases["serving"] = append(phases["serving"], l.Time.Sub(pushed))
					break
				}
			}
			phases["promoted"] = append(phases["promoted"], run.FinishedAt.Sub(pushed))
		}
		benchreport.Phases(b, "after git push returned", phases, "queued", "built", "serving", "promoted")
	}
}

// awaitRun waits (at most 10 minutes) for run id to end and returns its
// log and the run.
func (d *demoEnv) awaitRun(ctx context.Context, b *testing.B, id int64) ([]view.LogLineView, view.RunView) {
	b.Helper()
	var run view.RunView
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := d.get(ctx, fmt.Sprintf("/api/v1/runs/%d", id), &run); err != nil {
			b.Fatal(err)
		}
		if run.Status != "queued" && run.Status != "running" {
			break
		}
	}
	var lines []view.LogLineView
	for after := int64(0); ; {
		var page struct {
			Lines []view.LogLineView
			Next  int64
		}
		if err := d.get(ctx, fmt.Sprintf("/api/v1/runs/%d/logs?after=%d", id, after), &page); err != nil {
			b.Fatal(err)
		}
		lines = append(lines, page.Lines...)
		if len(page.Lines) == 0 {
			return lines, run
		}
		after = page.Next
	}
}
