package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/pgtest"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/fake"
)

// countingStore counts the store calls that write.
type countingStore struct {
	store.Store
	writes atomic.Int64
}

func (c *countingStore) CreateRun(ctx context.Context, n *store.NewRun) error {
	c.writes.Add(1)
	return c.Store.CreateRun(ctx, n)
}
func (c *countingStore) TransitionRun(ctx context.Context, id int64, from []store.RunStatus, to store.RunStatus, reason string, at time.Time) (bool, error) {
	c.writes.Add(1)
	return c.Store.TransitionRun(ctx, id, from, to, reason, at)
}
func (c *countingStore) ClaimNext(ctx context.Context, at time.Time, l store.Lease) (*store.Run, error) {
	c.writes.Add(1)
	return c.Store.ClaimNext(ctx, at, l)
}
func (c *countingStore) StartAttempt(ctx context.Context, id int64, i, n int, at time.Time) error {
	c.writes.Add(1)
	return c.Store.StartAttempt(ctx, id, i, n, at)
}
func (c *countingStore) FinishAttempt(ctx context.Context, id int64, i, n int, s store.StageStatus, e string, o map[string]string, at time.Time) error {
	c.writes.Add(1)
	return c.Store.FinishAttempt(ctx, id, i, n, s, e, o, at)
}
func (c *countingStore) SetStageStatus(ctx context.Context, id int64, i int, s store.StageStatus, r string, at time.Time) error {
	c.writes.Add(1)
	return c.Store.SetStageStatus(ctx, id, i, s, r, at)
}
func (c *countingStore) SkipPending(ctx context.Context, id int64, r string, at time.Time) error {
	c.writes.Add(1)
	return c.Store.SkipPending(ctx, id, r, at)
}
func (c *countingStore) AppendLogs(ctx context.Context, l []store.LogLine) error {
	c.writes.Add(1)
	return c.Store.AppendLogs(ctx, l)
}
func (c *countingStore) AppendEvent(ctx context.Context, e store.Event) error {
	c.writes.Add(1)
	return c.Store.AppendEvent(ctx, e)
}

// BenchmarkRun50NoopStages measures the engine's own overhead: one run of
// 50 fake stages that do nothing, end to end through the store — SQLite,
// and PostgreSQL with fsync and synchronous commit on (a server of its own
// on loopback). A stage transition is one of pending→running or
// running→succeeded.
func BenchmarkRun50NoopStages(b *testing.B) {
	const n = 50
	src := repeated("stages:\n", "  - {name: s%d, fake: {}}\n", n)
	eachBenchStore(b, func(b *testing.B, db store.Store) {
		elapsed, writes := benchRuns(b, db, src)
		b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N*n*2), "µs/transition")
		b.ReportMetric(float64(writes)/float64(b.N), "writes/run")
		b.ReportMetric(float64(writes)/elapsed.Seconds(), "writes/s")
	})
}

// BenchmarkStageLog1000Lines measures a chatty stage: one stage printing
// 1,000 lines, each in a write of its own, as a tool's output arrives.
func BenchmarkStageLog1000Lines(b *testing.B) {
	const n = 1000
	src := repeated("stages:\n  - name: chatty\n    fake:\n      log:\n", "        - \"step %d of the build: some output a tool printed\"\n", n)
	eachBenchStore(b, func(b *testing.B, db store.Store) {
		elapsed, writes := benchRuns(b, db, src)
		b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N*n), "µs/line")
		b.ReportMetric(float64(writes)/float64(b.N), "writes/run")
	})
}

// repeated is a pipeline named bench: head, then line formatted with 0
// to n-1.
func repeated(head, line string, n int) string {
	var src strings.Builder
	src.WriteString("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: bench}\n" + head)
	for i := range n {
		fmt.Fprintf(&src, line, i)
	}
	return src.String()
}

// eachBenchStore runs bench on SQLite, then on a durable PostgreSQL.
func eachBenchStore(b *testing.B, bench func(b *testing.B, db store.Store)) {
	b.Run("sqlite", func(b *testing.B) {
		sq, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer sq.Close()
		bench(b, sq)
	})
	b.Run("postgres", func(b *testing.B) {
		ctx := context.Background()
		srv, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
		if errors.Is(err, pgtest.ErrMissing) {
			b.Skip(err)
		}
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Stop()
		dsn, err := srv.CreateDB(ctx)
		if err != nil {
			b.Fatal(err)
		}
		pg, err := sqlstore.OpenPostgres(ctx, dsn, "")
		if err != nil {
			b.Fatal(err)
		}
		defer pg.Close()
		bench(b, pg)
	})
}

// benchRuns runs the pipeline src once per iteration, each run to its
// end, and returns how long they took and how many store writes they made.
func benchRuns(b *testing.B, db store.Store, src string) (time.Duration, int64) {
	ctx := context.Background()
	st := &countingStore{Store: db}
	kinds := stages.NewRegistry()
	kinds.Register("fake", fake.New(nil))
	r, err := New(st, kinds, WithWorkRoot(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	p := parseB(b, src)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run, _, err := r.Submit(ctx, Request{Pipeline: p, Trigger: manual})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		if got, _ := st.GetRun(ctx, run.ID); got.Status != store.RunSucceeded {
			b.Fatalf("run %d: %s %s", run.ID, got.Status, got.Reason)
		}
	}
	return b.Elapsed(), st.writes.Load()
}
