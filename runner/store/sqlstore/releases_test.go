package sqlstore

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

func TestMeasurementsAndRollbacks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		run := newRun(t, s, "order-service", "")
		min := 99.0
		now := time.Now().UTC().Truncate(time.Microsecond)
		ms := []*store.Measurement{
			{RunID: run.ID, Step: 4, Weight: 10, Metric: "success-rate", Query: "sum(rate(...))", Value: 71.2, Min: &min, Requests: 120, Outcome: "fail", Message: "71.2 < min 99", At: now},
			{RunID: run.ID, Step: 4, Weight: 10, Metric: "p99", Query: "histogram_quantile(...)", Value: 12, Requests: -1, Outcome: "pass", At: now},
		}
		for _, m := range ms {
			if err := s.AddMeasurement(ctx, m); err != nil || m.ID == 0 {
				t.Fatalf("AddMeasurement: %v (id %d)", err, m.ID)
			}
		}
		got, err := s.ListMeasurements(ctx, run.ID)
		if err != nil || len(got) != 2 || *got[0].Min != 99 || got[0].Max != nil || got[1].Min != nil || got[0].Value != 71.2 || !got[0].At.Equal(now) {
			t.Fatalf("ListMeasurements = %+v, %v", got, err)
		}
		evidence := release.RollbackEvidence{Detail: release.RollbackDetail{Measurements: []release.Measurement{*ms[0]}, FailureLimit: 1},
			Timings: release.RollbackTimings{DetectedAt: now, RestoredAt: now.Add(4100 * time.Millisecond)}}
		r := &store.Rollback{RunID: run.ID, App: "order-service", Rollback: release.Rollback{SourceSHA: "abc", Digest: "sha256:bad", Trigger: "analysis",
			Reason: "success-rate failed 1 of 1 allowed times", Weight: 10, ReleaseCommit: "c1", RollbackCommit: "c2",
			Evidence: evidence, DetectedAt: now, RestoredAt: now.Add(4100 * time.Millisecond)}}
		if err := s.AddRollback(ctx, r); err != nil || r.ID == 0 {
			t.Fatalf("AddRollback: %v", err)
		}
		again := *r
		if err := s.AddRollback(ctx, &again); err != nil || again.ID != r.ID {
			t.Errorf("a second rollback of run %d: id %d, want %d (%v)", run.ID, again.ID, r.ID, err)
		}
		run2 := newRun(t, s, "payments", "")
		other := &store.Rollback{RunID: run2.ID, App: "payments", Rollback: release.Rollback{Trigger: "manual", Actor: "alice", DetectedAt: now.Add(-time.Hour), RestoredAt: now}}
		if err := s.AddRollback(ctx, other); err != nil {
			t.Fatal(err)
		}
		back, err := s.GetRollback(ctx, r.ID)
		if err != nil || back.RestoredAt.Sub(back.DetectedAt) != 4100*time.Millisecond || !reflect.DeepEqual(back.Evidence, evidence) || back.Weight != 10 {
			t.Errorf("GetRollback = %+v, %v", back, err)
		}
		if _, err := s.GetRollback(ctx, 999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRollback(999) = %v", err)
		}
		all, _ := s.ListRollbacks(ctx, store.RollbackFilter{})
		shop, _ := s.ListRollbacks(ctx, store.RollbackFilter{App: "order-service"})
		recent, _ := s.ListRollbacks(ctx, store.RollbackFilter{Since: now.Add(-time.Minute)})
		if len(all) != 2 || all[0].ID != r.ID || len(shop) != 1 || len(recent) != 1 || recent[0].App != "order-service" {
			t.Errorf("ListRollbacks: all %d (first %d), app %d, recent %d", len(all), all[0].ID, len(shop), len(recent))
		}
	})
}

// A release's checkpoint is replaced in place; commands are taken once,
// oldest first, per run.
func TestReleaseCheckpointsAndCommands(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a, b := newRun(t, s, "order-service", ""), newRun(t, s, "payments", "")
		if _, err := s.GetRelease(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetRelease before any save = %v", err)
		}
		for _, st := range []release.State{release.Progressing, release.Paused} {
			if err := s.SaveRelease(ctx, &store.Release{RunID: a.ID, App: "order-service", Checkpoint: release.Checkpoint{State: st, Step: 2, Weight: 25, Data: []byte(`{"since":3}`)}}); err != nil {
				t.Fatal(err)
			}
		}
		must(t, s.SaveRelease(ctx, &store.Release{RunID: b.ID, App: "payments", Checkpoint: release.Checkpoint{State: release.RolledBack}}))
		got, err := s.GetRelease(ctx, a.ID)
		if err != nil || got.State != "paused" || got.Weight != 25 || string(got.Data) != `{"since":3}` {
			t.Errorf("GetRelease = %+v, %v", got, err)
		}
		inFlight, _ := s.ListReleases(ctx, "", true)
		all, _ := s.ListReleases(ctx, "", false)
		pay, _ := s.ListReleases(ctx, "payments", false)
		if len(inFlight) != 1 || inFlight[0].RunID != a.ID || len(all) != 2 || len(pay) != 1 {
			t.Errorf("ListReleases: in flight %d, all %d, payments %d", len(inFlight), len(all), len(pay))
		}
		// A release whose run ended (it failed after crashes, say) is not in flight.
		c := newRun(t, s, "billing", "")
		must(t, s.SaveRelease(ctx, &store.Release{RunID: c.ID, App: "billing", Checkpoint: release.Checkpoint{State: release.Progressing}}))
		if ok, err := s.TransitionRun(ctx, c.ID, []store.RunStatus{store.RunQueued}, store.RunFailed, "engine restarted", time.Now()); !ok || err != nil {
			t.Fatalf("failing run c: %v %v", ok, err)
		}
		if got, _ := s.ListReleases(ctx, "billing", true); len(got) != 0 {
			t.Errorf("the release of a failed run is listed in flight: %+v", got[0])
		}
		for _, name := range []release.Command{release.Pause, release.Promote} {
			must(t, s.AddCommand(ctx, &store.Command{RunID: a.ID, Name: name, Actor: "alice", CreatedAt: time.Now()}))
		}
		must(t, s.AddCommand(ctx, &store.Command{RunID: b.ID, Name: release.Abort, Actor: "bob", Detail: []byte(`{"alert":{}}`)}))
		var taken []string
		for {
			c, err := s.TakeCommand(ctx, a.ID, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if c == nil {
				break
			}
			taken = append(taken, string(c.Name)+"/"+c.Actor)
		}
		if len(taken) != 2 || taken[0] != "pause/alice" || taken[1] != "promote/alice" {
			t.Errorf("taken from run a: %v", taken)
		}
		if c, _ := s.TakeCommand(ctx, b.ID, time.Now()); c == nil || c.Name != "abort" || string(c.Detail) != `{"alert":{}}` {
			t.Errorf("run b's command = %+v", c)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
