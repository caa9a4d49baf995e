package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// A run created in a final status (the engine refused it) is stored
// ended, with its stages skipped and saying why, by each way a run is
// created — alone, and with the delivery that asks for it — and no claim
// ever takes it, while a queued run beside it is claimed.
func TestARunCreatedEndedIsNeverClaimed(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		refused := func(key string) *store.NewRun {
			return &store.NewRun{
				Run: &store.Run{Pipeline: "p", App: "p", Status: store.RunFailed, Reason: "refused: not granted", DedupKey: key, CreatedAt: now, FinishedAt: now},
				Stages: []store.Stage{
					{Index: 0, Name: "clone", Kind: "clone", Status: store.StageSkipped, Error: "not run: the run was refused", FinishedAt: now},
					{Index: 1, Name: "build", Kind: "build", Status: store.StageSkipped, Error: "not run: the run was refused", FinishedAt: now},
				},
				Event: store.Event{Kind: "failed", Time: now, Message: "refused: not granted"},
			}
		}
		alone := refused("push/d-1/p")
		must(t, s.CreateRun(ctx, alone))
		withDelivery := refused("push/d-2/p")
		d := &store.Delivery{Forge: "gitea", ID: "d-2", ReceivedAt: now, Event: "push", Payload: []byte(`{}`)}
		if _, err := s.RecordDelivery(ctx, d, []*store.NewRun{withDelivery}, func(d *store.Delivery) {
			d.Status, d.Matches = store.DeliveryProcessed, []store.Match{{Pipeline: "p", RunID: withDelivery.Run.ID}}
		}); err != nil {
			t.Fatal(err)
		}
		queued := &store.NewRun{Run: &store.Run{Pipeline: "q", App: "q", Status: store.RunQueued, CreatedAt: now},
			Stages: []store.Stage{{Index: 0, Name: "build", Kind: "fake"}}}
		must(t, s.CreateRun(ctx, queued))

		for _, nr := range []*store.NewRun{alone, withDelivery} {
			run, err := s.GetRun(ctx, nr.Run.ID)
			must(t, err)
			if run.Status != store.RunFailed || run.Reason != "refused: not granted" || run.FinishedAt.IsZero() {
				t.Errorf("run %d stored %s %q finished %v, want failed, refused, with its end", run.ID, run.Status, run.Reason, run.FinishedAt)
			}
			sts, err := s.ListStages(ctx, nr.Run.ID)
			must(t, err)
			for _, st := range sts {
				if st.Status != store.StageSkipped || st.Error != "not run: the run was refused" {
					t.Errorf("run %d stage %s stored %s %q, want skipped saying why", run.ID, st.Name, st.Status, st.Error)
				}
			}
			if evs, _ := s.ListEvents(ctx, nr.Run.ID); len(evs) != 1 || evs[0].Kind != "failed" {
				t.Errorf("run %d events %+v, want its one failed event", run.ID, evs)
			}
		}
		var claimed []int64
		for {
			run, err := s.ClaimNext(ctx, time.Now(), store.Lease{})
			must(t, err)
			if run == nil {
				break
			}
			claimed = append(claimed, run.ID)
		}
		if len(claimed) != 1 || claimed[0] != queued.Run.ID {
			t.Errorf("claimed runs %v, want only the queued run %d", claimed, queued.Run.ID)
		}
	})
}
