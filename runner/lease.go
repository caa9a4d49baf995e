package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// Engines sharing a store (PostgreSQL) lease the runs they execute. An
// engine renews its leases every third of their TTL; another engine takes
// over a run whose lease ended (its engine was killed, or lost the
// database) and resumes it as Recover resumes a crashed engine's runs. An
// engine that cannot renew for half a TTL stops its runs itself, before
// anyone can take them over, so that no stage runs on two engines.

type leaseOptions struct {
	owner string
	ttl   time.Duration
}

// errLeaseLost ends a run's context when its lease is gone: to its stages
// it is a shutdown (traffic stays where it is; the next engine resumes),
// and the run's end is not recorded — it is another engine's run now.
var errLeaseLost = fmt.Errorf("%w: this engine's lease on the run ended (another engine resumes it)", stages.ErrShutdown)

// WithLease makes the runner one of several engines on a shared store:
// it leases what it runs as owner (unique among the engines) for ttl at a
// time, and Recover takes over only runs whose lease ended.
func WithLease(owner string, ttl time.Duration) Option {
	return func(o *options) error {
		if owner == "" || ttl < time.Second {
			return fmt.Errorf("WithLease(%q, %s): an owner and a TTL of at least 1s are required", owner, ttl)
		}
		o.lease = leaseOptions{owner: owner, ttl: ttl}
		return nil
	}
}

func (r *Runner) leased() bool { return r.opts.lease.owner != "" }

// lease is the lease a claim or takeover made now carries.
func (r *Runner) lease(now time.Time) store.Lease {
	if !r.leased() {
		return store.Lease{}
	}
	return store.Lease{Owner: r.opts.lease.owner, Until: now.Add(r.opts.lease.ttl)}
}

// keepLeases renews this engine's leases and recovers runs whose lease
// ended, until ctx is done.
func (r *Runner) keepLeases(ctx context.Context) {
	tick := time.NewTicker(r.opts.lease.ttl / 3)
	defer tick.Stop()
	lastRenewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		// Only runs claimed before the renewal began can be missing from
		// it because they were taken over; one claimed meanwhile is not.
		before := r.runningIDs()
		held, err := r.store.RenewLeases(ctx, r.opts.lease.owner, now.Add(r.opts.lease.ttl))
		switch {
		case err == nil:
			lastRenewed = now
			r.dropLost(func(id int64) bool { return slices.Contains(before, id) && !slices.Contains(held, id) })
			r.releaseOrphans(ctx, held)
		case now.Sub(lastRenewed) > r.opts.lease.ttl/2:
			r.log.Error("leases not renewed for half their TTL: stopping this engine's runs", "err", err)
			r.dropLost(func(int64) bool { return true })
		default:
			r.log.Warn("renewing leases", "err", err)
		}
		if resumed, failed, err := r.Recover(ctx); err != nil {
			r.log.Error("taking over runs whose lease ended", "err", err)
		} else if resumed+failed > 0 {
			r.log.Info("took over runs whose lease ended", "resumed", resumed, "failed", failed)
		}
	}
}

// releaseOrphans recovers the runs this engine holds a lease on but no
// longer executes (it stopped them when it could not renew): renewed, such
// a lease would keep the run from everyone forever.
func (r *Runner) releaseOrphans(ctx context.Context, held []int64) {
	running := r.runningIDs()
	for _, id := range held {
		if slices.Contains(running, id) {
			continue
		}
		now := time.Now()
		// taken "as if expired" from ourselves: only while it is still running (not
		// finished, nor handed back, a moment ago)
		won, err := r.store.TakeExpired(ctx, id, now.Add(2*r.opts.lease.ttl), r.lease(now))
		if err != nil || !won {
			continue
		}
		run, err := r.store.GetRun(ctx, id)
		if err == nil {
			_, err = r.recoverRun(ctx, run)
		}
		if err != nil {
			r.log.Error("recovering a run this engine had stopped", "run", id, "err", err)
			continue
		}
		r.poke()
	}
}

// runningIDs lists the runs executing here.
func (r *Runner) runningIDs() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]int64, 0, len(r.running))
	for id := range r.running {
		ids = append(ids, id)
	}
	return ids
}

// dropLost stops the runs executing here that lost tells are no longer
// this engine's.
func (r *Runner) dropLost(lost func(id int64) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, cancel := range r.running {
		if lost(id) {
			r.log.Warn("lease lost: stopping the run here", "run", id)
			cancel(errLeaseLost)
		}
	}
}

// fencedOut is what a run does when the store refuses one of its writes
// because another engine took it over (this engine was paused past its
// lease, or cut off from the database, and did not notice in time): it
// says so once and stops the run here, as a lost lease does.
func (r *Runner) fencedOut(id int64, cancel context.CancelCauseFunc) func(error) {
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			r.log.Error("another engine took the run over: its writes from this engine are refused; stopping it here", "run", id, "err", err)
			cancel(errLeaseLost)
		})
	}
}

// leaseLost reports whether ctx ended because the run's lease did.
func leaseLost(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errLeaseLost) }
