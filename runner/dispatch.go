package runner

import (
	"context"
	"sync"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// rescanInterval is how often the dispatcher looks for queued runs it was
// not told about (queued by another process sharing the store).
const rescanInterval = 2 * time.Second

// Serve starts queued runs as concurrency groups and the parallelism limit
// allow, until ctx is done. Then it cancels the stages still running —
// their attempts are recorded as interrupted and their runs go back to the
// queue, to resume at the next start — and returns once they have stopped.
func (r *Runner) Serve(ctx context.Context) error {
	return r.loop(ctx, false)
}

// Drain is Serve for one-shot use: it returns once nothing is queued or
// running in this process.
func (r *Runner) Drain(ctx context.Context) error {
	return r.loop(ctx, true)
}

func (r *Runner) loop(ctx context.Context, untilIdle bool) error {
	var (
		wg   sync.WaitGroup
		slot = make(chan struct{}, r.opts.maxParallel)
	)
	defer wg.Wait()
	if r.leased() {
		leaseCtx, stop := context.WithCancel(ctx)
		wg.Add(1)
		go func() { defer wg.Done(); r.keepLeases(leaseCtx) }()
		defer stop()
	}
	tick := time.NewTicker(rescanInterval)
	defer tick.Stop()
	for {
		r.recoverStopped(ctx)
		for ctx.Err() == nil {
			started, err := r.startNext(ctx, slot, &wg)
			if err != nil {
				r.log.Error("dispatching runs", "err", err)
				break
			}
			if !started {
				break
			}
		}
		if untilIdle && r.idle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-tick.C:
		}
	}
}

// startNext claims one run and executes it in the background, if a slot
// is free and a run may start. It reports whether it started one.
func (r *Runner) startNext(ctx context.Context, slot chan struct{}, wg *sync.WaitGroup) (bool, error) {
	select {
	case slot <- struct{}{}:
	default:
		return false, nil // all slots busy; a finishing run pokes the loop
	}
	r.mu.Lock()
	now := time.Now()
	run, err := r.store.ClaimNext(ctx, now, r.lease(now))
	if err != nil || run == nil {
		r.mu.Unlock()
		<-slot
		return false, err
	}
	// The run's context ends with stages.ErrShutdown when the engine's
	// does, so a stage can tell a shutdown (resume later) from a cancel.
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	// What the run writes is fenced by the epoch it was claimed at.
	runCtx = store.WithFence(runCtx, store.Fence{Run: run.ID, Epoch: run.Epoch, Stale: r.fencedOut(run.ID, cancel)})
	stopShutdown := context.AfterFunc(ctx, func() { cancel(stages.ErrShutdown) })
	r.running[run.ID] = cancel
	r.mu.Unlock()
	r.changed(run.ID) // started: the claim recorded it
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { <-slot; r.poke() }()
		defer func() {
			r.mu.Lock()
			delete(r.running, run.ID)
			r.mu.Unlock()
			stopShutdown()
			cancel(nil)
		}()
		r.execute(runCtx, run)
	}()
	return true, nil
}

func (r *Runner) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running) == 0
}
