package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// ReasonEngineRestarted is the reason given to runs and attempts that an
// engine crash interrupted.
const ReasonEngineRestarted = "engine restarted"

// ReasonStoreRefused is the reason given to runs and attempts the engine
// stopped because the store refused their progress (a full disk, a
// database that failed a write), and resumed once it took writes again.
const ReasonStoreRefused = "the store refused the run's progress"

// Recover is called once when an engine starts, before Serve or Drain:
// every run the store says is running was left by an engine that died.
// The attempt it was in is recorded as interrupted, and the run is queued
// again to resume at that stage — or failed, with the reason "engine
// restarted", once it has been resumed as many times as WithMaxResumes
// allows. No run stays "running" with nobody running it. It returns how
// many runs it resumed and how many it failed.
//
// Only one engine may use a SQLite store at a time. Engines sharing a
// database (WithLease) recover only runs whose lease ended, each taken
// over by one of them; they call Recover again as they renew their leases.
func (r *Runner) Recover(ctx context.Context) (resumed, failed int, err error) {
	runs, err := r.store.ListRuns(ctx, store.RunFilter{Status: []store.RunStatus{store.RunRunning}, Limit: 100_000})
	if err != nil {
		return 0, 0, fmt.Errorf("recovering runs: %w", err)
	}
	for _, run := range runs {
		if r.leased() {
			now := time.Now()
			if won, err := r.store.TakeExpired(ctx, run.ID, now, r.lease(now)); err != nil || !won {
				if err != nil {
					return resumed, failed, err
				}
				continue // its engine is alive, or another engine took it over first
			}
		}
		ok, err := r.recoverRun(ctx, run)
		if err != nil {
			return resumed, failed, err
		}
		if ok {
			resumed++
		} else {
			failed++
		}
	}
	if resumed > 0 {
		r.poke()
	}
	return resumed, failed, nil
}

// recoverRun records a dead run's attempt as interrupted and queues the
// run again (true), or fails it when it has been resumed too often.
func (r *Runner) recoverRun(ctx context.Context, run *store.Run) (resumed bool, err error) {
	return r.recoverRunFor(ctx, run, ReasonEngineRestarted)
}

// recoverRunFor is recoverRun saying why the run stopped.
func (r *Runner) recoverRunFor(ctx context.Context, run *store.Run, why string) (resumed bool, err error) {
	stage, err := r.interruptAttempts(ctx, run.ID, why)
	if err != nil {
		return false, fmt.Errorf("recovering run %d: %w", run.ID, err)
	}
	if run.Resumes >= r.opts.maxResumes {
		reason := fmt.Sprintf("%s during %s, after %d resumes; giving up", why, stage, run.Resumes)
		r.skipPending(ctx, run.ID, "not run: the run failed")
		_, err := r.transition(ctx, run.ID, store.RunFailed, reason)
		return false, err
	}
	reason := fmt.Sprintf("%s during %s; resuming there", why, stage)
	_, err = r.transition(ctx, run.ID, store.RunQueued, reason)
	return err == nil, err
}

// interruptAttempts marks a dead run's running attempts interrupted (for
// why) and names the stage it was in.
func (r *Runner) interruptAttempts(ctx context.Context, id int64, why string) (string, error) {
	attempts, err := r.store.ListAttempts(ctx, id)
	if err != nil {
		return "", err
	}
	rows, err := r.store.ListStages(ctx, id)
	if err != nil {
		return "", err
	}
	where := "start-up"
	for _, a := range attempts {
		if a.Status != store.StageRunning {
			continue
		}
		if err := r.store.FinishAttempt(ctx, id, a.Index, a.Attempt, AttemptInterrupted, why, nil, time.Now()); err != nil {
			return "", err
		}
		where = fmt.Sprintf("stage %s (attempt %d)", rows[a.Index].Name, a.Attempt)
	}
	return where, nil
}
