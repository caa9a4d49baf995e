package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
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

// A delivery's matches name the runs it started, by the IDs the store
// gave them, whether those runs are all new, one of them is not, the
// outcome writes an ID into a reason, or a match's reason holds a NUL.
func TestRecordDeliveryNamesItsRuns(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		existing := newRun(t, s, "old", "")
		if err := s.CreateRun(ctx, &store.NewRun{Run: &store.Run{Pipeline: "b", App: "b", Status: store.RunQueued, DedupKey: "push/taken/b", CreatedAt: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, delivery, keyB string
			reasonWithID         bool
			noMatch              string
		}{
			{"all new", "d-new", "push/d-new/b", false, "no path matched"},
			{"a run key taken", "d-taken", "push/taken/b", false, "no path matched"},
			{"an ID in a reason", "d-reason", "push/d-reason/b", true, "no path matched"},
			{"a NUL in a reason", "d-nul", "push/d-nul/b", false, "no path\x00matched"},
		} {
			d := &store.Delivery{Forge: "gitea", ID: c.delivery, ReceivedAt: time.Now(), Event: "push", Payload: []byte(`{}`)}
			var runs []*store.NewRun
			for _, p := range []string{"a", "b"} {
				key := "push/" + c.delivery + "/" + p
				if p == "b" {
					key = c.keyB
				}
				runs = append(runs, &store.NewRun{Run: &store.Run{Pipeline: p, App: p, Status: store.RunQueued, DedupKey: key, CreatedAt: time.Now()},
					Stages: []store.Stage{{Index: 0, Name: "build", Kind: "fake"}}, Event: store.Event{Kind: "queued", Time: time.Now()}})
			}
			// the second match names no run: the runs' matches are the first and the third
			old, err := s.RecordDelivery(ctx, d, runs, func(d *store.Delivery) {
				d.Status, d.Reason = store.DeliveryProcessed, ""
				d.Matches = []store.Match{{Pipeline: "a", RunID: runs[0].Run.ID}, {Pipeline: "c", Reason: c.noMatch}, {Pipeline: "b", RunID: runs[1].Run.ID}}
				if !runs[1].Created {
					d.Matches[2].Reason = "started before"
				}
				if c.reasonWithID {
					d.Reason = fmt.Sprint("started ", runs[0].Run.ID)
				}
			})
			if err != nil || old != nil {
				t.Fatalf("%s: RecordDelivery = %+v, %v", c.name, old, err)
			}
			list, err := s.ListDeliveries(ctx, store.DeliveryFilter{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var got *store.Delivery
			for _, l := range list {
				if l.ID == c.delivery {
					got = l
				}
			}
			if got == nil || !reflect.DeepEqual(got.Matches, d.Matches) || got.Reason != d.Reason {
				t.Fatalf("%s: stored %+v, recorded %+v", c.name, got, d)
			}
			for i, nr := range runs {
				if nr.Run.ID <= existing.ID || got.Matches[2*i].RunID != nr.Run.ID {
					t.Errorf("%s: run %s has ID %d, its match %+v", c.name, nr.Run.Pipeline, nr.Run.ID, got.Matches[2*i])
				}
				if want := c.keyB != "push/taken/b" || i == 0; nr.Created != want {
					t.Errorf("%s: run %s created = %v, want %v", c.name, nr.Run.Pipeline, nr.Created, want)
				}
				evs, _ := s.ListEvents(ctx, nr.Run.ID)
				sts, _ := s.ListStages(ctx, nr.Run.ID)
				if nr.Created && (len(evs) != 1 || evs[0].Kind != "queued" || len(sts) != 1 || sts[0].Name != "build") {
					t.Errorf("%s: run %d has events %+v and stages %+v, want its queued event and its stage", c.name, nr.Run.ID, evs, sts)
				}
			}
			if c.reasonWithID && got.Reason != fmt.Sprint("started ", runs[0].Run.ID) {
				t.Errorf("%s: reason %q names run %d", c.name, got.Reason, runs[0].Run.ID)
			}
		}
	})
}

// PostgreSQL records a delivery with its runs in one statement only when
// the outcome puts the runs' IDs in matches and nowhere else.
func TestPlaceholdersFindWhereTheIDsGo(t *testing.T) {
	runs := []*store.NewRun{{Run: &store.Run{}}, {Run: &store.Run{}}}
	d := &store.Delivery{}
	named, ok := placeholders(d, runs, func(d *store.Delivery) {
		d.Matches = []store.Match{{Pipeline: "b", RunID: runs[1].Run.ID}, {Pipeline: "x"}, {Pipeline: "a", RunID: runs[0].Run.ID}}
	})
	if want := []namedRun{{match: 0, run: 1}, {match: 2, run: 0}}; !ok || !slices.Equal(named, want) {
		t.Errorf("placeholders = %v, %v; want %v, true", named, ok, want)
	}
	for what, outcome := range map[string]func(*store.Delivery){
		"an ID in a reason": func(d *store.Delivery) { d.Reason = fmt.Sprint("run ", runs[0].Run.ID) },
		"an ID in a match's reason": func(d *store.Delivery) {
			d.Matches = []store.Match{{Pipeline: "a", RunID: runs[0].Run.ID, Reason: fmt.Sprint(runs[0].Run.ID)}}
		},
	} {
		if _, ok := placeholders(d, runs, outcome); ok {
			t.Errorf("%s: placeholders are ok", what)
		}
	}
}
