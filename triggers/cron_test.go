package triggers

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/integration/pgtest"
	"github.com/slipwayci/slipway/runner/store"
)

// newSchedulerOn makes a scheduler over the database at path, as an engine
// (re)starting on it would.
func newSchedulerOn(t *testing.T, path string) (*Scheduler, store.Store) {
	t.Helper()
	st, r := newRunner(t, path)
	repo := &Repo{Config: engineconfig.Repository{Name: "shop", URL: "https://git.example.com/shop.git"},
		Sources: []Source{filePipeline(t, "nightly", `{schedule: ["0 3 * * *", "@hourly"]}`)}}
	s, err := NewScheduler(context.Background(), []*Repo{repo}, st, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func scheduleRuns(t *testing.T, st store.Store) []*store.Run {
	t.Helper()
	runs, err := st.ListRuns(context.Background(), store.RunFilter{Pipeline: "nightly", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func TestScheduleFiresOnceAcrossRestartsAndOutages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	day := time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC)
	s, st := newSchedulerOn(t, path)
	if s.Len() != 2 {
		t.Fatalf("%d schedules, want 2", s.Len())
	}
	next, err := s.Tick(ctx, day) // first start: counting begins, nothing fires
	if err != nil || len(scheduleRuns(t, st)) != 0 || !next.Equal(day.Add(30*time.Minute)) {
		t.Fatalf("first start: next %v, %d runs, %v", next, len(scheduleRuns(t, st)), err)
	}
	s.Tick(ctx, day.Add(31*time.Minute)) // 01:01: @hourly due at 01:00
	if n := len(scheduleRuns(t, st)); n != 1 {
		t.Fatalf("after 01:00: %d runs, want 1", n)
	}
	s.Tick(ctx, day.Add(32*time.Minute)) // 01:02: nothing new
	// Restart at 01:03: no double fire.
	s2, st2 := newSchedulerOn(t, path)
	s2.Tick(ctx, day.Add(33*time.Minute))
	if n := len(scheduleRuns(t, st2)); n != 1 {
		t.Fatalf("after a restart within the hour: %d runs, want 1", n)
	}
	// Down from 01:03 to 05:10: 02:00, 03:00, 04:00, 05:00 hourly and 03:00 daily were
	// missed; each schedule fires once on start.
	s3, st3 := newSchedulerOn(t, path)
	s3.Tick(ctx, day.Add(4*time.Hour+40*time.Minute))
	runs := scheduleRuns(t, st3)
	if len(runs) != 3 {
		t.Fatalf("after an outage: %d runs, want 3 (one per schedule)", len(runs))
	}
	keys := map[string]bool{}
	for _, r := range runs {
		keys[r.DedupKey] = true
		if r.Trigger.Event != "schedule" || r.Trigger.Ref != "refs/heads/main" {
			t.Errorf("run trigger = %+v", r.Trigger)
		}
	}
	for _, want := range []string{"schedule/shop|nightly.yaml|nightly|@hourly/2026-11-27T05:00:00Z", "schedule/shop|nightly.yaml|nightly|0 3 * * */2026-11-27T03:00:00Z"} {
		if !keys[want] {
			t.Errorf("no run keyed %s; keys %v", want, keys)
		}
	}
}

// Engines sharing a database each run the scheduler: every due time
// fires once, whichever engines tick at it, at the same moment or not.
func TestScheduleFiresOnceAcrossEngines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DB(t)
	day := time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC)
	engines := make([]*Scheduler, 3)
	var st store.Store
	for i := range engines {
		engines[i], st = newSchedulerOn(t, dsn)
	}
	tickAll := func(at time.Time) {
		var wg sync.WaitGroup
		for _, s := range engines {
			wg.Go(func() {
				if _, err := s.Tick(ctx, at); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	tickAll(day)
	tickAll(day.Add(31 * time.Minute)) // 01:01: @hourly due at 01:00
	tickAll(day.Add(32 * time.Minute))
	if n := len(scheduleRuns(t, st)); n != 1 {
		t.Fatalf("after 01:00 on %d engines: %d runs, want 1", len(engines), n)
	}
	engines[0].Tick(ctx, day.Add(4*time.Hour+40*time.Minute)) // one engine sees the outage end first
	tickAll(day.Add(4*time.Hour + 41*time.Minute))
	if n := len(scheduleRuns(t, st)); n != 3 {
		t.Fatalf("after an outage on %d engines: %d runs, want 3 (one per schedule)", len(engines), n)
	}
}

// A crash after the run was created but before the fire was stored must
// not start the run again.
func TestScheduleFireIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	day := time.Date(2026, 11, 27, 0, 30, 0, 0, time.UTC)
	s, st := newSchedulerOn(t, path)
	s.Tick(ctx, day)
	s.Tick(ctx, day.Add(31*time.Minute))
	st.SetLastFire(ctx, "nightly|@hourly", day) // as if the fire had not been stored
	s.Tick(ctx, day.Add(32*time.Minute))
	if n := len(scheduleRuns(t, st)); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }
