package runner

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/stages"
)

// probeStage blocks until its context ends, after exercising the run's
// Release, and reports what it saw.
type probeStage struct{ seen chan<- probeResult }

type probeResult struct {
	shuttingDown bool
	err          error
	commands     []string
	rollbackIDs  [2]int64
	measurements int
	checkpoint   *release.Checkpoint
}

func (p *probeStage) Validate() error { return nil }

func (p *probeStage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	var res probeResult
	rel := run.Release
	res.err = rel.Save(ctx, release.Checkpoint{State: "progressing", Step: 1, Weight: 25, Data: []byte(`{"since":0}`)})
	for range 2 {
		if _, err := rel.RecordMeasurement(ctx, release.Measurement{Step: 1, Weight: 25, Metric: "sr", Outcome: "pass", Requests: -1, At: time.Now()}); err != nil {
			res.err = err
		}
	}
	ms, _ := rel.Measurements(ctx)
	res.measurements = len(ms)
	res.checkpoint, _ = rel.Checkpoint(ctx)
	for i := range 2 {
		res.rollbackIDs[i], _ = rel.RecordRollback(ctx, release.Rollback{Trigger: "manual", DetectedAt: time.Now(), RestoredAt: time.Now()})
	}
	p.seen <- res // the test queues a command now
	for ctx.Err() == nil {
		if c, _ := rel.NextRequest(ctx); c != nil {
			res.commands = append(res.commands, string(c.Command)+"/"+c.Actor)
			p.seen <- res // the command arrived; the test stops the run now
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.shuttingDown = stages.ShuttingDown(ctx)
	p.seen <- res
	return stages.Result{}, ctx.Err()
}

// A stage keeps its checkpoint, measurements and rollback (once) through
// Run.Release and hears commands once; its context tells an engine
// shutdown (stages.ErrShutdown) from a cancelled run.
func TestReleaseAndShutdownCause(t *testing.T) {
	t.Parallel()
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seen := make(chan probeResult)
	kinds := stages.NewRegistry()
	kinds.Register("fake", func(any) (stages.Stage, error) { return &probeStage{seen: seen}, nil })
	r, err := New(st, kinds, WithWorkRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, "stages:\n  - {name: canary, fake: {}}\n")
	for _, shutdown := range []bool{false, true} {
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() { r.Serve(ctx); close(served) }()
		run, _, err := r.Submit(context.Background(), Request{Pipeline: p, Trigger: manual})
		if err != nil {
			t.Fatal(err)
		}
		first := <-seen
		if first.err != nil || first.measurements != 2 || first.checkpoint == nil || first.checkpoint.Weight != 25 ||
			first.rollbackIDs[0] == 0 || first.rollbackIDs[0] != first.rollbackIDs[1] {
			t.Errorf("release through the runner: %+v", first)
		}
		must(t, st.AddCommand(context.Background(), &store.Command{RunID: run.ID, Name: "promote", Actor: "alice"}))
		if got := <-seen; len(got.commands) != 1 {
			t.Errorf("commands %v", got.commands)
		}
		if shutdown {
			stop()
		} else {
			must(t, r.Cancel(context.Background(), run.ID, "by test"))
		}
		last := <-seen
		if last.shuttingDown != shutdown || len(last.commands) != 1 || last.commands[0] != "promote/alice" {
			t.Errorf("shutdown %v: the stage saw shuttingDown %v, commands %v", shutdown, last.shuttingDown, last.commands)
		}
		stop()
		<-served
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
