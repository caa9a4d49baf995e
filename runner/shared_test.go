package runner

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/pgtest"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// sharedEngines are n engines on one new PostgreSQL database, leasing
// their runs as owner "a", "b", ….
func sharedEngines(t *testing.T, n int, opts ...Option) []*testEngine {
	t.Helper()
	dsn := pgtest.DB(t)
	out := make([]*testEngine, n)
	for i := range out {
		out[i] = engineOn(t, openPG(t, dsn), append([]Option{WithLease(string(rune('a'+i)), 3*time.Second)}, opts...)...)
	}
	return out
}

// openPG opens a store on the database at dsn for the test.
func openPG(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.OpenPostgres(context.Background(), dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// hookedEngine is one engine (owner "a", lease 1 s) on a new database,
// through a store whose renewals the test can hook.
func hookedEngine(t *testing.T) (*testEngine, *renewHook) {
	t.Helper()
	hook := &renewHook{Store: openPG(t, pgtest.DB(t))}
	return engineOn(t, hook, WithLease("a", time.Second)), hook
}

// Two engines on one database: a run queued through one is started by
// the other at once (woken, not polled); a command given through one
// wakes the release waiting on the other; log lines written on one wake
// a follower on the other; and the engine running a run hands it back on
// shutdown, to be resumed by the other without waiting for its lease.
func TestEnginesOnOneDatabaseWakeEachOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	engines := sharedEngines(t, 2)
	a, b := engines[0], engines[1]
	stopA := a.serve(t)
	p := parse(t, "stages:\n  - {name: wait, fake: {sleep: 1h}}\n")
	run := b.submit(t, p) // queued through b, which does not serve yet
	eventually.True(t, 10*time.Second, "engine a to start the run queued through b", func() bool {
		got := b.get(t, run.ID)
		atts, _ := b.store.ListAttempts(ctx, run.ID)
		return got.Status == store.RunRunning && got.Owner == "a" && len(atts) == 1
	})

	rel := &releaseStore{st: a.store, cmds: a.cmds, runID: run.ID}
	given := rel.RequestMade()
	if err := b.store.(store.Store).AddCommand(ctx, &store.Command{RunID: run.ID, Name: "promote", Actor: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-given:
	case <-time.After(10 * time.Second):
		t.Fatal("a command given through engine b did not wake the release on engine a")
	}
	if c, err := rel.NextRequest(ctx); err != nil || c == nil || c.Command != release.Promote {
		t.Errorf("NextRequest on a = %+v, %v", c, err)
	}

	logged := b.notes.wait(run.ID)
	if err := a.store.AppendLogs(ctx, []store.LogLine{{RunID: run.ID, Stage: "wait", Attempt: 1, Time: time.Now(), Text: "still waiting"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-logged:
	case <-time.After(10 * time.Second):
		t.Fatal("log lines written on engine a did not wake a follower on engine b")
	}

	b.serve(t)
	handedBack := time.Now()
	stopA()
	eventually.True(t, 10*time.Second, "engine b to resume the run engine a handed back", func() bool {
		got := b.get(t, run.ID)
		atts, _ := b.store.ListAttempts(ctx, run.ID)
		return got.Status == store.RunRunning && got.Owner == "b" && len(atts) == 2
	})
	t.Logf("handed back and running again on the other engine %s later (lease 3s)", time.Since(handedBack).Round(time.Millisecond))
	atts, _ := b.store.ListAttempts(ctx, run.ID)
	if len(atts) != 2 || atts[0].Status != AttemptInterrupted || atts[1].Status != store.StageRunning {
		t.Errorf("attempts = %+v, want the first interrupted and the second running", atts)
	}
	evs, _ := b.store.(store.Store).ListEvents(ctx, run.ID)
	var starts []string
	for _, e := range evs {
		if e.Kind == "started" {
			starts = append(starts, e.Message)
		}
	}
	if len(starts) != 2 || starts[0] != "on engine a" || starts[1] != "on engine b" {
		t.Errorf("starts = %q", starts)
	}
	if err := b.Cancel(ctx, run.ID, "test over"); err != nil {
		t.Fatal(err)
	}
}

// renewHook is a store whose RenewLeases lets something happen between
// the renewal's read and its answer.
type renewHook struct {
	store.Store
	once   sync.Once
	during func()
	fail   atomic.Int32 // renewals to fail (the database unreachable)
}

func (h *renewHook) RenewLeases(ctx context.Context, owner string, until time.Time) ([]int64, error) {
	if h.fail.Add(-1) >= 0 {
		return nil, errors.New("connection refused")
	}
	held, err := h.Store.RenewLeases(ctx, owner, until)
	if h.during != nil {
		h.once.Do(h.during)
	}
	return held, err
}

// A run claimed while a renewal is under way is missing from what the
// renewal read; it is this engine's all the same, and runs to its end
// without being stopped as a run whose lease was lost.
func TestARunClaimedDuringARenewalIsKept(t *testing.T) {
	t.Parallel()
	e, hook := hookedEngine(t)
	p := parse(t, "stages:\n  - {name: wait, fake: {sleep: 1500ms}}\n")
	claimed := make(chan *store.Run, 1)
	hook.during = func() {
		run := e.submit(t, p)
		eventually.True(t, 10*time.Second, "the run to be claimed during the renewal", func() bool {
			return slices.Contains(e.runningIDs(), run.ID)
		})
		claimed <- run
	}
	e.serve(t)
	select {
	case run := <-claimed:
		e.waitStatus(t, run.ID, store.RunSucceeded)
		if atts, _ := e.store.ListAttempts(context.Background(), run.ID); len(atts) != 1 {
			t.Errorf("%d attempts, want 1: the run was stopped as if its lease were lost", len(atts))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no renewal in 10 s")
	}
}

// An engine that cannot renew its leases for half their TTL stops its
// runs (another engine may take them over once the leases end). If the
// database comes back first, it recovers them itself: it never keeps
// renewing the lease of a run it no longer executes.
func TestAnEngineThatLostTheDatabaseRecoversWhatItStopped(t *testing.T) {
	t.Parallel()
	e, hook := hookedEngine(t)
	// The first attempt waits until the engine stops it (a busy machine
	// may take seconds to fail two renewals); the second does not wait.
	run := e.submit(t, parse(t, "stages:\n  - {name: wait, fake: {sleep: 10m, sleepAttempts: [1]}}\n"))
	e.serve(t)
	eventually.True(t, 10*time.Second, "the run to start", func() bool { return slices.Contains(e.runningIDs(), run.ID) })
	hook.fail.Store(2) // two renewals (≈ 0.67 s) fail: more than half the TTL
	eventually.True(t, time.Minute, "the run to succeed", func() bool { return e.get(t, run.ID).Status == store.RunSucceeded })
	atts, _ := e.store.ListAttempts(context.Background(), run.ID)
	if len(atts) != 2 || atts[0].Status != AttemptInterrupted || atts[1].Status != store.StageSucceeded {
		t.Errorf("attempts = %+v, want the first interrupted and the second succeeded", atts)
	}
}
