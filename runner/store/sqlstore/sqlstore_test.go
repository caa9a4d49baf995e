package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/pgtest"
	"github.com/slipwayci/slipway/runner/store"
)

// eachStore runs test against a new SQLite and a new PostgreSQL store,
// in parallel: the store is one contract, with no behaviour that only one
// database has.
func eachStore(t *testing.T, test func(t *testing.T, s *Store)) {
	eachDatabase(t, func(t *testing.T, open func() (*Store, error)) {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		test(t, s)
	})
}

// eachDatabase runs test with a new database of each kind; each call of
// open opens that same database again.
func eachDatabase(t *testing.T, test func(t *testing.T, open func() (*Store, error))) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "slipway.db")
		test(t, func() (*Store, error) { return OpenSQLite(context.Background(), path) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.DB(t)
		test(t, func() (*Store, error) { return OpenPostgres(context.Background(), dsn, "") })
	})
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// writerAndListener opens the stores of two engines on one database, one
// writing and one hearing its signals; on SQLite (one engine) they are
// the same store. Both are closed with the test.
func writerAndListener(t *testing.T, open func() (*Store, error)) (writer, listener *Store) {
	t.Helper()
	writer, err := open()
	must(t, err)
	t.Cleanup(func() { writer.Close() })
	if !writer.d.numbered {
		return writer, writer
	}
	listener, err = open()
	must(t, err)
	t.Cleanup(func() { listener.Close() })
	return writer, listener
}

func newRun(t *testing.T, s *Store, pipeline, group string) *store.Run {
	t.Helper()
	r := &store.Run{Pipeline: pipeline, App: pipeline, PipelineFile: "p.yaml", PipelineSource: []byte("src"),
		Trigger: store.Trigger{Event: "manual", Params: map[string]string{"a": "b"}}, Group: group,
		Policy: "queue", Status: store.RunQueued, CreatedAt: time.Now()}
	if err := s.CreateRun(context.Background(), &store.NewRun{Run: r, Stages: []store.Stage{{Index: 0, Name: "build", Kind: "fake"}, {Index: 1, Name: "deploy", Kind: "fake"}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunRoundTripAndGuardedTransitions(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := newRun(t, s, "shop", "")
		got, err := s.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Pipeline != "shop" || string(got.PipelineSource) != "src" || got.Trigger.Params["a"] != "b" || got.Status != store.RunQueued {
			t.Errorf("round trip lost data: %+v", got)
		}
		ok, err := s.TransitionRun(ctx, r.ID, []store.RunStatus{store.RunRunning}, store.RunSucceeded, "", time.Now())
		if err != nil || ok {
			t.Fatalf("queued → succeeded went through a guard for running: ok=%v err=%v", ok, err)
		}
		if ok, _ := s.TransitionRun(ctx, r.ID, []store.RunStatus{store.RunQueued}, store.RunCancelled, "by test", time.Now()); !ok {
			t.Fatal("queued → cancelled refused")
		}
		got, _ = s.GetRun(ctx, r.ID)
		if got.Status != store.RunCancelled || got.Reason != "by test" || got.FinishedAt.IsZero() {
			t.Errorf("after cancel: %+v", got)
		}
		// the transition that went through is in the timeline, the refused one is not
		if evs, _ := s.ListEvents(ctx, r.ID); len(evs) != 1 || evs[0].Kind != "cancelled" || evs[0].Message != "by test" {
			t.Errorf("events after one transition: %+v", evs)
		}
		if _, err := s.GetRun(ctx, 999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRun(999) = %v, want ErrNotFound", err)
		}
	})
}

func TestClaimNextKeepsGroupOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		early := newRun(t, s, "c", "")
		a1 := newRun(t, s, "a", "deploy-a")
		a2 := newRun(t, s, "a", "deploy-a")
		b1 := newRun(t, s, "b", "deploy-b")
		free := newRun(t, s, "c", "")
		var order []int64
		for {
			r, err := s.ClaimNext(ctx, time.Now(), store.Lease{})
			if err != nil {
				t.Fatal(err)
			}
			if r == nil {
				break
			}
			order = append(order, r.ID)
		}
		// a2 waits for a1 (running); the others start, oldest first,
		// whether in a group or not.
		want := []int64{early.ID, a1.ID, b1.ID, free.ID}
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Fatalf("claimed %v, want %v", order, want)
		}
		s.TransitionRun(ctx, a1.ID, []store.RunStatus{store.RunRunning}, store.RunSucceeded, "", time.Now())
		r, _ := s.ClaimNext(ctx, time.Now(), store.Lease{})
		if r == nil || r.ID != a2.ID {
			t.Fatalf("after a1 finished, claimed %v, want run %d", r, a2.ID)
		}
	})
}

// A run that takes a slot (its repository's) starts only while one of
// its slots is free; runs past it, of other slots or none, start in the
// meantime, and it starts when a run holding its slot ends.
func TestClaimNextHoldsARepositoryToItsSlots(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		slotted := func(slot string, slots int) *store.Run {
			t.Helper()
			r := &store.Run{Pipeline: "p", App: "p", PipelineFile: "p.yaml", Trigger: store.Trigger{Event: "push"},
				Status: store.RunQueued, CreatedAt: time.Now(), Slot: slot, Slots: slots}
			if err := s.CreateRun(ctx, &store.NewRun{Run: r, Stages: []store.Stage{{Index: 0, Name: "a", Kind: "fake"}}}); err != nil {
				t.Fatal(err)
			}
			return r
		}
		a, b := store.RepositorySlot("a"), store.RepositorySlot("b")
		a1, a2, a3 := slotted(a, 2), slotted(a, 2), slotted(a, 2)
		b1 := slotted(b, 1)
		free := newRun(t, s, "c", "")
		b2 := slotted(b, 1)
		claimAll := func() []int64 {
			var ids []int64
			for {
				r, err := s.ClaimNext(ctx, time.Now(), store.Lease{})
				if err != nil {
					t.Fatal(err)
				}
				if r == nil {
					return ids
				}
				ids = append(ids, r.ID)
			}
		}
		if got, want := claimAll(), []int64{a1.ID, a2.ID, b1.ID, free.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("claimed %v, want %v: two of a's three, one of b's two, and the run of no repository", got, want)
		}
		if got, _ := s.GetRun(ctx, a3.ID); got.Slot != a || got.Slots != 2 {
			t.Errorf("a3 stored with slot %q of %d", got.Slot, got.Slots)
		}
		var listed []int64
		if runs, err := s.ListRuns(ctx, store.RunFilter{Repository: "b"}); err == nil {
			for _, r := range runs {
				listed = append(listed, r.ID)
			}
		}
		if want := []int64{b2.ID, b1.ID}; fmt.Sprint(listed) != fmt.Sprint(want) {
			t.Errorf("runs of repository b listed %v, want %v", listed, want)
		}
		s.TransitionRun(ctx, a1.ID, []store.RunStatus{store.RunRunning}, store.RunSucceeded, "", time.Now())
		s.TransitionRun(ctx, b1.ID, []store.RunStatus{store.RunRunning}, store.RunFailed, "", time.Now())
		if got, want := claimAll(), []int64{a3.ID, b2.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after a1 and b1 ended, claimed %v, want %v", got, want)
		}
		// Claimers racing take no more of a repository's slots than it has.
		for range 12 {
			slotted("repository c", 3)
		}
		var (
			wg      sync.WaitGroup
			claimed atomic.Int32
		)
		for range 4 {
			wg.Go(func() {
				for {
					r, err := s.ClaimNext(ctx, time.Now(), store.Lease{})
					if err != nil || r == nil {
						return
					}
					claimed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := claimed.Load(); n != 3 {
			t.Errorf("4 racing claimers took %d runs of a repository of 3 slots", n)
		}
	})
}

// Claimers racing must never both get the same run, nor two runs of one
// concurrency group.
func TestClaimNextIsExclusive(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var first int64
		for i := range 25 {
			if i%5 == 2 {
				r := newRun(t, s, "g", "one-at-a-time")
				if first == 0 {
					first = r.ID
				}
				continue
			}
			newRun(t, s, "p", "")
		}
		var (
			mu   sync.Mutex
			seen = map[int64]int{}
			wg   sync.WaitGroup
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					r, err := s.ClaimNext(ctx, time.Now(), store.Lease{})
					if err != nil {
						t.Error(err)
						return
					}
					if r == nil {
						return
					}
					mu.Lock()
					seen[r.ID]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 21 || seen[first] != 1 {
			t.Errorf("claimed %d distinct runs, want the 20 outside the group and its first (run %d): %v", len(seen), first, seen)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("run %d claimed %d times", id, n)
			}
		}
	})
}

func TestAttemptsAreIdempotentAndSummedIntoStages(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := newRun(t, s, "p", "")
		now := time.Now()
		for _, step := range []func() error{
			func() error { return s.StartAttempt(ctx, r.ID, 0, 1, now) },
			func() error { return s.StartAttempt(ctx, r.ID, 0, 1, now) }, // repeated: no effect
			func() error { return s.FinishAttempt(ctx, r.ID, 0, 1, store.StageFailed, "boom", nil, now) },
			func() error { return s.StartAttempt(ctx, r.ID, 0, 2, now) },
			func() error {
				return s.FinishAttempt(ctx, r.ID, 0, 2, store.StageSucceeded, "", map[string]string{"digest": "sha256:1"}, now)
			},
			func() error { return s.SetStageStatus(ctx, r.ID, 1, store.StageSkipped, "when: branch", now) },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		atts, _ := s.ListAttempts(ctx, r.ID)
		if len(atts) != 2 || atts[0].Status != store.StageFailed || atts[0].Error != "boom" || atts[1].Status != store.StageSucceeded {
			t.Errorf("attempts = %+v", atts)
		}
		sts, _ := s.ListStages(ctx, r.ID)
		if sts[0].Status != store.StageSucceeded || sts[0].Attempts != 2 || sts[0].Outputs["digest"] != "sha256:1" || sts[0].Error != "" {
			t.Errorf("stage 0 = %+v", sts[0])
		}
		if sts[1].Status != store.StageSkipped || sts[1].Error != "when: branch" {
			t.Errorf("stage 1 = %+v", sts[1])
		}

		// a run ending with a stage started and one never started
		r2 := newRun(t, s, "p", "")
		must(t, s.StartAttempt(ctx, r2.ID, 0, 1, now))
		must(t, s.SkipPending(ctx, r2.ID, "not run: the run cancelled", now))
		sts, _ = s.ListStages(ctx, r2.ID)
		if sts[0].Status != store.StageRunning || sts[1].Status != store.StageSkipped || sts[1].Error != "not run: the run cancelled" {
			t.Errorf("after SkipPending: stage 0 %s, stage 1 %s %q; want running, and skipped saying why", sts[0].Status, sts[1].Status, sts[1].Error)
		}
	})
}

func TestLogsAndEventsInOrder(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := newRun(t, s, "p", "")
		lines := []store.LogLine{{RunID: r.ID, Stage: "build", Attempt: 1, Time: time.Now(), Text: "one"}, {RunID: r.ID, Stage: "build", Attempt: 1, Time: time.Now(), Text: "two"}}
		if err := s.AppendLogs(ctx, lines); err != nil {
			t.Fatal(err)
		}
		if lines[0].Seq == 0 || lines[1].Seq <= lines[0].Seq {
			t.Errorf("seqs not assigned in order: %d, %d", lines[0].Seq, lines[1].Seq)
		}
		got, _ := s.ReadLogs(ctx, r.ID, lines[0].Seq, 10)
		if len(got) != 1 || got[0].Text != "two" {
			t.Errorf("ReadLogs after first = %+v", got)
		}
		if n, err := s.CountRuns(ctx, nil); err != nil || n[store.RunQueued] != 1 {
			t.Errorf("CountRuns = %v, %v; want 1 queued", n, err)
		}
		if n, _ := s.CountRuns(ctx, []string{"nothing"}); len(n) != 0 {
			t.Errorf("CountRuns(nothing) = %v, want none", n)
		}
		more := []store.LogLine{{RunID: r.ID, Stage: "b", Text: "three"}, {RunID: r.ID, Stage: "b", Text: "four"}}
		s.AppendLogs(ctx, more)
		tail, _ := s.ReadLogsBefore(ctx, r.ID, "", 0, 2)
		if len(tail) != 2 || tail[0].Text != "three" || tail[1].Text != "four" {
			t.Errorf("ReadLogsBefore(end, 2) = %+v, want three, four", tail)
		}
		if page, _ := s.ReadLogsBefore(ctx, r.ID, "", more[0].Seq, 5); len(page) != 2 || page[0].Text != "one" || page[1].Text != "two" {
			t.Errorf("ReadLogsBefore(three, 5) = %+v, want one, two", page)
		}
		if build, _ := s.ReadLogsBefore(ctx, r.ID, "build", 0, 5); len(build) != 2 || build[1].Text != "two" {
			t.Errorf("ReadLogsBefore(stage build) = %+v, want one, two", build)
		}
		s.AppendEvent(ctx, store.Event{RunID: r.ID, Time: time.Now(), Kind: "queued", Message: "by test"})
		s.AppendEvent(ctx, store.Event{RunID: r.ID, Time: time.Now(), Kind: "started"})
		evs, _ := s.ListEvents(ctx, r.ID)
		if len(evs) != 2 || evs[0].Kind != "queued" || evs[1].Kind != "started" {
			t.Errorf("events = %+v", evs)
		}
	})
}

func TestReopenKeepsDataAndRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, open func() (*Store, error)) {
		ctx := context.Background()
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		r := newRun(t, s, "p", "")
		s.Close()
		s2, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s2.GetRun(ctx, r.ID); err != nil {
			t.Fatalf("run lost on reopen: %v", err)
		}
		if _, err := s2.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)`); err != nil {
			t.Fatal(err)
		}
		s2.Close()
		if _, err := open(); err == nil || !strings.Contains(err.Error(), "newer than this engine knows") {
			t.Fatalf("opening a newer schema: %v", err)
		}
	})
}

// Engines started at once on a new database apply each migration once.
func TestEnginesStartingAtOnceMigrateOnce(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, open func() (*Store, error)) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				s, err := open()
				if err == nil {
					s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var n, versions int
		if err := s.db.QueryRowContext(context.Background(), `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &versions); err != nil {
			t.Fatal(err)
		}
		if n != versions || n == 0 {
			t.Errorf("schema_migrations holds %d rows for %d versions", n, versions)
		}
	})
}

// The database holds logs and evidence: it is its owner's only, even when
// it existed with a looser mode.
func TestDatabaseFileIsPrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}
