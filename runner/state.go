package runner

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// AttemptInterrupted marks an attempt cut short by the engine itself
// (crash, shutdown) rather than by the stage: it is retried without
// counting against the stage's retries.
const AttemptInterrupted store.StageStatus = "interrupted"

// runTransitions is the run state machine: for each status, the statuses
// a run may come from.
var runTransitions = map[store.RunStatus][]store.RunStatus{
	store.RunRunning:   {store.RunQueued},
	store.RunSucceeded: {store.RunRunning},
	store.RunFailed:    {store.RunQueued, store.RunRunning},
	store.RunCancelled: {store.RunQueued, store.RunRunning},
	store.RunQueued:    {store.RunRunning}, // a resume after a restart or shutdown
}

// transition moves a run to `to` if the state machine allows it from the
// status it has now; reason must already be masked. ok is false when the run was elsewhere (another
// caller won, or it had already finished).
func (r *Runner) transition(ctx context.Context, id int64, to store.RunStatus, reason string) (bool, error) {
	return r.move(ctx, id, runTransitions[to], to, reason)
}

// move is transition restricted to some of the allowed origins.
func (r *Runner) move(ctx context.Context, id int64, from []store.RunStatus, to store.RunStatus, reason string) (bool, error) {
	for _, f := range from {
		if !slices.Contains(runTransitions[to], f) {
			return false, fmt.Errorf("run %d: no transition from %s to %s", id, f, to)
		}
	}
	if len(from) == 0 {
		return false, fmt.Errorf("run %d: no transition to %q", id, to)
	}
	ok, err := r.store.TransitionRun(ctx, id, from, to, reason, time.Now())
	if err == nil && ok {
		r.changed(id)
	}
	return ok, err
}

// event appends to a run's timeline; a failure to record it is logged,
// never fatal to the run.
func (r *Runner) event(ctx context.Context, id int64, kind, msg string) {
	err := r.store.AppendEvent(context.WithoutCancel(ctx), store.Event{RunID: id, Time: time.Now(), Kind: kind, Message: msg})
	if err != nil {
		r.log.Error("recording run event", "run", id, "kind", kind, "err", err)
	}
}
