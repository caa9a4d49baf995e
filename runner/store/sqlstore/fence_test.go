package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// An engine's writes for a run are fenced by the epoch it claimed the
// run at: once another engine takes the run over, every kind of write the
// first makes is refused, writes nothing and is heard by its fence;
// the new owner's writes, and writes made under no fence (a person's
// cancel through the API), go through.
func TestFencedWrites(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		r := newRun(t, s, "p", "")
		claimed, err := s.ClaimNext(ctx, now, store.Lease{Owner: "a", Until: now.Add(time.Minute)})
		if err != nil || claimed == nil || claimed.ID != r.ID || claimed.Epoch < 1 {
			t.Fatalf("ClaimNext = %+v, %v; want run %d at an epoch", claimed, err, r.ID)
		}
		var heard []error
		a := store.WithFence(ctx, store.Fence{Run: r.ID, Epoch: claimed.Epoch, Stale: func(err error) { heard = append(heard, err) }})
		must(t, s.StartAttempt(a, r.ID, 0, 1, now)) // a's, while it holds the run
		if won, err := s.TakeExpired(ctx, r.ID, now.Add(2*time.Minute), store.Lease{Owner: "b", Until: now.Add(3 * time.Minute)}); !won || err != nil {
			t.Fatalf("TakeExpired = %v, %v", won, err)
		}
		taken, err := s.GetRun(ctx, r.ID)
		if err != nil || taken.Epoch != claimed.Epoch+1 {
			t.Fatalf("after the takeover: %+v, %v; want epoch %d", taken, err, claimed.Epoch+1)
		}
		before := fencedState(t, s, r.ID)
		writes := map[string]func(context.Context) error{
			"AppendLogs": func(ctx context.Context) error {
				return s.AppendLogs(ctx, []store.LogLine{{RunID: r.ID, Stage: "build", Attempt: 1, Time: now, Text: "late"}})
			},
			"AppendEvent": func(ctx context.Context) error {
				return s.AppendEvent(ctx, store.Event{RunID: r.ID, Time: now, Kind: "note", Message: "late"})
			},
			"StartAttempt": func(ctx context.Context) error { return s.StartAttempt(ctx, r.ID, 1, 1, now) },
			"FinishAttempt": func(ctx context.Context) error {
				return s.FinishAttempt(ctx, r.ID, 0, 1, store.StageSucceeded, "", map[string]string{"k": "v"}, now)
			},
			"SetStageStatus": func(ctx context.Context) error {
				return s.SetStageStatus(ctx, r.ID, 1, store.StageSkipped, "late", now)
			},
			"SkipPending": func(ctx context.Context) error { return s.SkipPending(ctx, r.ID, "late", now) },
			"PutArtifact": func(ctx context.Context) error {
				return s.PutArtifact(ctx, store.Artifact{RunID: r.ID, Index: 0, Attempt: 1, Name: "report", MediaType: "text/plain", CreatedAt: now, Data: []byte("late")})
			},
			"SaveRelease": func(ctx context.Context) error {
				return s.SaveRelease(ctx, &store.Release{RunID: r.ID, App: "p", UpdatedAt: now})
			},
			"TransitionRun": func(ctx context.Context) error {
				_, err := s.TransitionRun(ctx, r.ID, []store.RunStatus{store.RunRunning}, store.RunSucceeded, "late", now)
				return err
			},
		}
		for name, write := range writes {
			if err := write(a); !errors.Is(err, store.ErrFenced) {
				t.Errorf("%s under the old epoch: %v; want ErrFenced", name, err)
			}
		}
		if len(heard) != len(writes) {
			t.Errorf("the fence heard %d refusals, want %d: %v", len(heard), len(writes), heard)
		}
		if after := fencedState(t, s, r.ID); after != before {
			t.Errorf("refused writes changed the run:\n before %s\n after  %s", before, after)
		}
		b := store.WithFence(ctx, store.Fence{Run: r.ID, Epoch: taken.Epoch})
		must(t, writes["AppendEvent"](b))
		must(t, writes["AppendLogs"](ctx))
		if moved, err := s.TransitionRun(b, r.ID, []store.RunStatus{store.RunRunning}, store.RunSucceeded, "b's", now); !moved || err != nil {
			t.Errorf("the new owner's transition: %v, %v", moved, err)
		}
	})
}

// fencedState is what the writes of TestFencedWrites would change.
func fencedState(t *testing.T, s *Store, id int64) string {
	t.Helper()
	ctx := context.Background()
	run, err := s.GetRun(ctx, id)
	must(t, err)
	stages, err := s.ListStages(ctx, id)
	must(t, err)
	events, err := s.ListEvents(ctx, id)
	must(t, err)
	logs, err := s.ReadLogs(ctx, id, 0, 1000)
	must(t, err)
	arts, err := s.ListArtifacts(ctx, id)
	must(t, err)
	_, relErr := s.GetRelease(ctx, id)
	state := fmt.Sprintf("run %s, %d events, %d log lines, %d artifacts, release: %v;", run.Status, len(events), len(logs), len(arts), relErr)
	for _, st := range stages {
		state += fmt.Sprintf(" %s %s %d %v", st.Name, st.Status, st.Attempts, st.Outputs)
	}
	return state
}
