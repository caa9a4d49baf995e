package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/internal/faultreport"
)

// frozenPipeline's build stage runs long enough to be frozen in.
const frozenPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: svc}
on: {push: {branches: [main]}}
stages:
  - {name: build, fake: {log: ["building"], sleep: 6s, outputs: {image: built}}}
`

// An engine frozen (SIGSTOP) in the middle of a stage, past its lease,
// and then woken cannot write over the engine that took its run over.
// Two engines share one PostgreSQL database (lease 3 s). The one running
// the build is stopped; the other takes the run over, marks the frozen
// attempt interrupted and runs the build again; then the frozen engine
// is continued, its attempt's end (and anything else it would write) is
// refused by the store — the run's epoch moved on — and it says so. The
// run ends once, succeeded by the engine that took it over, and the
// interrupted attempt stays interrupted.
func TestFaultEngineFrozenPastItsLease(t *testing.T) {
	offNode(t)
	dir, srv, dsn := replicaFiles(t, frozenPipeline)
	engines := []*engineProc{startServe(t, replicaConfig(t, dir, dsn, 0)), startServe(t, replicaConfig(t, dir, dsn, 1))}
	conn := connectPostgres(t, srv, dsn)
	ctx := context.Background()
	if code, err := deliver(engines[0].url, "s3cret", 1); err != nil || code >= 300 {
		t.Fatalf("delivering the push: %d %v", code, err)
	}
	attempt := func(n int) (status string) {
		conn.QueryRow(ctx, `SELECT status FROM attempts WHERE attempt = $1`, n).Scan(&status)
		return status
	}
	eventually.True(t, 30*time.Second, "the build's first attempt to run", func() bool { return attempt(1) == "running" })
	var owner string
	var epoch int64
	must(t, conn.QueryRow(ctx, `SELECT owner, epoch FROM runs`).Scan(&owner, &epoch))
	frozen, other := engines[0], engines[1]
	if strings.Contains(owner, fmt.Sprintf("/%d/", other.cmd.Process.Pid)) {
		frozen, other = other, frozen
	}
	must(t, syscall.Kill(frozen.cmd.Process.Pid, syscall.SIGSTOP))
	stopped := time.Now()
	t.Cleanup(func() { syscall.Kill(frozen.cmd.Process.Pid, syscall.SIGCONT) })

	eventually.True(t, 30*time.Second, "the other engine to take the run over and build again", func() bool { return attempt(2) == "running" })
	var takenBy string
	var taken int64
	must(t, conn.QueryRow(ctx, `SELECT owner, epoch FROM runs`).Scan(&takenBy, &taken))
	if !strings.Contains(takenBy, fmt.Sprintf("/%d/", other.cmd.Process.Pid)) || taken <= epoch {
		t.Fatalf("run held by %q at epoch %d after the takeover; want the other engine past epoch %d", takenBy, taken, epoch)
	}
	takenAfter := time.Since(stopped)
	t.Logf("taken over %.1fs after the freeze (epoch %d → %d)", takenAfter.Seconds(), epoch, taken)
	must(t, syscall.Kill(frozen.cmd.Process.Pid, syscall.SIGCONT))

	var status string
	eventually.True(t, 30*time.Second, "the run to end", func() bool {
		conn.QueryRow(ctx, `SELECT status FROM runs`).Scan(&status)
		return status != "running" && status != "queued"
	})
	// Written by the frozen engine once woken: its attempt's lines
	// stamped after the other engine began attempt 2 (its cleanup's).
	var late int
	must(t, conn.QueryRow(ctx, `SELECT COUNT(*) FROM logs WHERE attempt = 1 AND at > (SELECT started_at FROM attempts WHERE attempt = 2)`).Scan(&late))
	if late != 0 {
		t.Errorf("the woken engine wrote %d log lines after the takeover", late)
	}
	var ended, succeededAttempts int
	must(t, conn.QueryRow(ctx, `SELECT COUNT(*) FROM events WHERE kind IN ('succeeded', 'failed', 'cancelled')`).Scan(&ended))
	must(t, conn.QueryRow(ctx, `SELECT COUNT(*) FROM attempts WHERE status = 'succeeded'`).Scan(&succeededAttempts))
	if status != "succeeded" || ended != 1 || succeededAttempts != 1 || attempt(1) != "interrupted" || attempt(2) != "succeeded" {
		t.Errorf("run %s, ended %d times, %d attempts succeeded, attempt 1 %s, attempt 2 %s; want succeeded once, by attempt 2 (attempt 1 interrupted)\n--- woken engine:\n%s",
			status, ended, succeededAttempts, attempt(1), attempt(2), frozen.out.String())
	}
	const refused = "another engine took the run over: its writes from this engine are refused"
	eventually.True(t, 10*time.Second, "the woken engine to say its writes were refused", func() bool {
		return strings.Contains(frozen.out.String(), refused)
	})
	lost := 0
	if status != "succeeded" {
		lost = 1
	}
	faultreport.Record(t, faultreport.Outcome{
		Fault:     "the engine running a build frozen (SIGSTOP) past its lease (3 s), then woken",
		Happened:  fmt.Sprintf("the other engine took the run over (fencing token %d → %d) and built again; the woken engine's writes were refused (%d log lines landed after the takeover) and it stopped the run", epoch, taken, late),
		Recovered: takenAfter, RunsLost: lost, Double: max(0, succeededAttempts-1),
	})
}
