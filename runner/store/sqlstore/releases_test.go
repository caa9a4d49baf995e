package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

func TestMeasurementsAndRollbacks(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	run := newRun(t, s, "order-service", "")
	min := 99.0
	now := time.Now().UTC().Truncate(time.Microsecond)
	ms := []*store.Measurement{
		{RunID: run.ID, Index: 4, Weight: 10, Metric: "success-rate", Query: "sum(rate(...))", Value: 71.2, Min: &min, Requests: 120, Outcome: "fail", Message: "71.2 < min 99", At: now},
		{RunID: run.ID, Index: 4, Weight: 10, Metric: "p99", Query: "histogram_quantile(...)", Value: 12, Requests: -1, Outcome: "pass", At: now},
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
	r := &store.Rollback{RunID: run.ID, App: "order-service", SourceSHA: "abc", Digest: "sha256:bad", Trigger: "analysis",
		Reason: "success-rate failed 1 of 1 allowed times", Weight: 10, ReleaseCommit: "c1", RollbackCommit: "c2",
		Evidence: []byte(`{"measurements":[1]}`), DetectedAt: now, RestoredAt: now.Add(4100 * time.Millisecond)}
	if err := s.AddRollback(ctx, r); err != nil || r.ID == 0 {
		t.Fatalf("AddRollback: %v", err)
	}
	other := &store.Rollback{RunID: run.ID, App: "payments", Trigger: "manual", Actor: "alice", DetectedAt: now.Add(-time.Hour), RestoredAt: now}
	if err := s.AddRollback(ctx, other); err != nil {
		t.Fatal(err)
	}
	back, err := s.GetRollback(ctx, r.ID)
	if err != nil || back.RestoredAt.Sub(back.DetectedAt) != 4100*time.Millisecond || string(back.Evidence) != `{"measurements":[1]}` || back.Weight != 10 {
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
}
