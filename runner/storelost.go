package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// When the store refuses a run's progress (its disk is full, the
// database failed the write), the stage's outcome cannot be recorded: it
// is not the stage's failure, and the engine must not go on as if it had
// been written. The run stops here as at a shutdown (its stages leave
// traffic where it is), recording nothing more, and is resumed from what
// the store holds once the store takes writes again: by the engine that
// took it over, on a shared store, or by this engine's dispatcher, which
// looks for such runs at each rescan until none is left.

// errStoreLost ends a run's context when the store refused its progress.
var errStoreLost = fmt.Errorf("%w: %s; it resumes once the store takes writes again", stages.ErrShutdown, ReasonStoreRefused)

// storeLost stops run id here because the store refused err.
func (r *Runner) storeLost(id int64, err error) {
	r.mu.Lock()
	cancel := r.running[id]
	if !r.leased() { // on a shared store the leases resume it
		if r.stopped == nil {
			r.stopped = map[int64]bool{}
		}
		r.stopped[id] = true
	}
	r.mu.Unlock()
	r.log.Error("the store refused a run's progress: stopping the run here; it resumes once the store takes writes again", "run", id, "err", err)
	if cancel != nil {
		cancel(errStoreLost)
	}
}

// refusedByStore reports whether err is the store's own failure to write
// a run's progress (not a fenced write: that run is another engine's).
func refusedByStore(err error) bool { return err != nil && !errors.Is(err, store.ErrFenced) }

// stoppedForTheStore reports whether ctx ended because the store refused
// the run's progress.
func stoppedForTheStore(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errStoreLost) }

// recoverStopped resumes the runs this engine stopped for the store, once
// they have stopped and the store takes writes again. On a shared store
// the leases do it (releaseOrphans).
func (r *Runner) recoverStopped(ctx context.Context) {
	if r.leased() {
		return
	}
	r.mu.Lock()
	var stopped []int64
	for id := range r.stopped {
		if _, still := r.running[id]; !still {
			stopped = append(stopped, id)
		}
	}
	r.mu.Unlock()
	slices.Sort(stopped)
	for _, id := range stopped {
		run, err := r.store.GetRun(ctx, id)
		if err == nil && run.Status == store.RunRunning {
			_, err = r.recoverRunFor(ctx, run, ReasonStoreRefused)
		}
		if err != nil {
			r.log.Warn("resuming a run stopped for the store: not yet", "run", id, "err", err)
			return
		}
		r.mu.Lock()
		delete(r.stopped, id)
		r.mu.Unlock()
		r.log.Info("resumed a run stopped for the store", "run", id)
		r.poke()
	}
}
