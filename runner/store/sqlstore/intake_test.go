package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

func TestDedupKeyMakesOneRun(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		mk := func() error {
			r := &store.Run{Pipeline: "p", App: "p", Status: store.RunQueued, DedupKey: "github/abc/p", CreatedAt: time.Now()}
			return s.CreateRun(ctx, &store.NewRun{Run: r})
		}
		if err := mk(); err != nil {
			t.Fatal(err)
		}
		if err := mk(); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("second run with the same key: %v", err)
		}
		r, err := s.RunByKey(ctx, "github/abc/p")
		if err != nil || r.DedupKey != "github/abc/p" {
			t.Fatalf("RunByKey = %+v, %v", r, err)
		}
		if _, err := s.RunByKey(ctx, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the empty key must match nothing: %v", err)
		}
		newRun(t, s, "q", "") // runs without a key never collide
		newRun(t, s, "q", "")
		counts, _ := s.CountRuns(ctx, nil)
		if counts[store.RunQueued] != 3 {
			t.Errorf("counts = %v", counts)
		}
	})
}

func TestDeliveriesAreStoredOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := &store.Delivery{Forge: "github", ID: "d-1", ReceivedAt: time.Now(), Event: "push", Repo: "shop", Ref: "refs/heads/main",
			Status: store.DeliveryReceived, Payload: []byte(`{"x":1}`)}
		if old, err := s.CreateDelivery(ctx, d); err != nil || old != nil {
			t.Fatalf("first: %v %v", old, err)
		}
		d.Status, d.Matches = store.DeliveryProcessed, []store.Match{{Pipeline: "a", RunID: 7}, {Pipeline: "b", Reason: "branch dev matches none of [main]"}}
		if err := s.UpdateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		again := *d
		again.Status = store.DeliveryReceived
		old, err := s.CreateDelivery(ctx, &again)
		if err != nil || old == nil || old.Status != store.DeliveryProcessed || len(old.RunIDs()) != 1 || old.RunIDs()[0] != 7 || string(old.Payload) != `{"x":1}` {
			t.Fatalf("redelivery: %+v %v", old, err)
		}
		list, _ := s.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryProcessed})
		if len(list) != 1 || list[0].Matches[1].Reason == "" {
			t.Errorf("list = %+v", list)
		}
	})
}

func TestSchedulesAndAudit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if at, err := s.LastFire(ctx, "p/0 3 * * *"); err != nil || !at.IsZero() {
			t.Fatalf("never fired: %v %v", at, err)
		}
		t1 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
		s.SetLastFire(ctx, "p/0 3 * * *", t1)
		s.SetLastFire(ctx, "p/0 3 * * *", t1.Add(24*time.Hour))
		if at, _ := s.LastFire(ctx, "p/0 3 * * *"); !at.Equal(t1.Add(24 * time.Hour)) {
			t.Errorf("last fire = %v", at)
		}
		for _, a := range []string{"run.trigger", "run.cancel", "run.trigger"} {
			if err := s.AppendAudit(ctx, store.AuditEntry{Time: time.Now(), Actor: "alice", Action: a, Target: "run/1"}); err != nil {
				t.Fatal(err)
			}
		}
		all, _ := s.ListAudit(ctx, 0, 10)
		if len(all) != 3 || all[0].ID < all[2].ID || all[1].Action != "run.cancel" {
			t.Errorf("audit = %+v", all)
		}
		page, _ := s.ListAudit(ctx, all[1].ID, 10)
		if len(page) != 1 || page[0].ID != all[2].ID {
			t.Errorf("page before %d = %+v", all[1].ID, page)
		}
	})
}
