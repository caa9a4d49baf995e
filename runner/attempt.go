package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime/debug"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// errTimeout is the cause of an attempt's context when its stage timed out.
type errTimeout struct{ d time.Duration }

func (e errTimeout) Error() string { return fmt.Sprintf("stage timed out after %s", e.d) }

// runStage takes stage i to success through as many attempts as its
// retries allow. It returns "" to go on with the next stage, or the status
// the run ends with (queued: the engine is shutting down) and why.
func (r *Runner) runStage(ctx context.Context, ex *execution, i int) (store.RunStatus, string) {
	st, row := &ex.p.Stages[i], ex.stages[i]
	switch row.Status {
	case store.StageSucceeded: // resumed run: done before the restart
		ex.outputs[st.Name] = row.Outputs
		return "", ""
	case store.StageSkipped:
		return "", ""
	}
	trig := ex.data().Run
	if !st.Runs(trig.Event, trig.Branch) {
		reason := fmt.Sprintf("when: not for event %s on branch %q", trig.Event, trig.Branch)
		if err := r.store.SetStageStatus(ctx, ex.run.ID, i, store.StageSkipped, reason, time.Now()); err != nil {
			return store.RunFailed, err.Error()
		}
		return "", ""
	}
	if why := r.readmit(ctx, ex); why != "" {
		ex.log.Warn("stage not started: the run is no longer admitted", "stage", st.Name, "reason", why)
		return store.RunFailed, why
	}
	n, failures := 0, 0
	if row.Attempts > 0 { // resumed: carry on counting from the stored attempts
		var err error
		if n, failures, err = r.pastAttempts(ctx, ex.run.ID, i); err != nil {
			return store.RunFailed, err.Error()
		}
	}
	for {
		n++
		began := time.Now()
		res, err := r.attempt(ctx, ex, i, n)
		r.keepArtifacts(ctx, ex, i, n, res.Artifacts)
		status, reason := r.settle(ctx, ex, i, n, res.Outputs, err)
		r.opts.observer.StageFinished(st.Kind(), status, time.Since(began))
		if status != store.StageFailed {
			return runOutcome(st.Name, status, reason)
		}
		failures++
		if !stages.IsRetryable(err) || failures > st.Retries {
			return store.RunFailed, fmt.Sprintf("stage %s failed: %s", st.Name, reason)
		}
		wait := r.backoff(failures)
		r.say(ctx, ex, st.Name, n, "attempt %d failed: %s; retry %d of %d in %s", n, reason, failures, st.Retries, wait)
		if sleepUntil(ctx, nil, wait) != nil {
			status, reason := r.interruption(ctx)
			return runOutcome(st.Name, status, reason)
		}
	}
}

// runOutcome maps how a stage ended to how the run goes on.
func runOutcome(stage string, status store.StageStatus, reason string) (store.RunStatus, string) {
	switch status {
	case store.StageSucceeded:
		return "", ""
	case store.StageCancelled:
		return store.RunCancelled, reason
	case AttemptInterrupted:
		return store.RunQueued, fmt.Sprintf("engine shutting down during stage %s; resumes at the next start", stage)
	}
	return store.RunFailed, fmt.Sprintf("stage %s: %s", stage, reason)
}

// interruption says why ctx ended: a cancellation of the run (with its
// reason) or the engine going away.
func (r *Runner) interruption(ctx context.Context) (store.StageStatus, string) {
	var c errCancelled
	if errors.As(context.Cause(ctx), &c) {
		return store.StageCancelled, c.reason
	}
	if stoppedForTheStore(ctx) {
		return AttemptInterrupted, ReasonStoreRefused
	}
	return AttemptInterrupted, "engine shutting down"
}

// pastAttempts returns the number of the last attempt of stage i and how
// many attempts failed (interrupted ones do not count).
func (r *Runner) pastAttempts(ctx context.Context, id int64, i int) (last, failures int, err error) {
	all, err := r.store.ListAttempts(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	for _, a := range all {
		if a.Index != i {
			continue
		}
		last = max(last, a.Attempt)
		if a.Status == store.StageFailed {
			failures++
		}
	}
	return last, failures, nil
}

// settle classifies and records the end of attempt n.
func (r *Runner) settle(ctx context.Context, ex *execution, i, n int, outputs map[string]string, err error) (store.StageStatus, string) {
	status, reason := store.StageSucceeded, ""
	switch {
	case err == nil:
	case ctx.Err() != nil:
		status, reason = r.interruption(ctx)
	default:
		status, reason = store.StageFailed, ex.mask.Mask(err.Error())
	}
	if status != store.StageSucceeded {
		outputs = nil
	}
	outputs = ex.mask.MaskMap(outputs) // outputs are stored, served and templated: never a secret
	at := time.Now()
	if rerr := r.store.FinishAttempt(context.WithoutCancel(ctx), ex.run.ID, i, n, status, reason, outputs, at); rerr != nil {
		if refusedByStore(rerr) {
			r.storeLost(ex.run.ID, rerr)
		}
		return AttemptInterrupted, rerr.Error()
	}
	if status == store.StageSucceeded {
		ex.outputs[ex.p.Stages[i].Name] = outputs
	}
	r.changed(ex.run.ID)
	return status, reason
}

// keepArtifacts stores what an attempt produced, whatever its outcome.
func (r *Runner) keepArtifacts(ctx context.Context, ex *execution, i, n int, arts []stages.Artifact) {
	for _, a := range arts {
		err := r.store.PutArtifact(context.WithoutCancel(ctx), store.Artifact{RunID: ex.run.ID, Index: i, Attempt: n,
			Name: a.Name, MediaType: a.MediaType, Subject: a.Subject, Data: a.Data, CreatedAt: time.Now()})
		if err != nil {
			r.say(ctx, ex, ex.p.Stages[i].Name, n, "could not store artifact %s: %v", a.Name, err)
		}
	}
}

// attempt runs attempt n of stage i: render, create, validate, run with
// the stage's timeout, then clean up on a context of its own.
func (r *Runner) attempt(ctx context.Context, ex *execution, i, n int) (stages.Result, error) {
	st := &ex.p.Stages[i]
	if err := r.store.StartAttempt(ctx, ex.run.ID, i, n, time.Now()); err != nil {
		if refusedByStore(err) {
			r.storeLost(ex.run.ID, err)
		}
		return stages.Result{}, err
	}
	r.changed(ex.run.ID)
	log := r.newSink(ctx, ex, st.Name, n)
	defer log.Close()
	run := &stages.Run{
		ID: ex.run.ID, Pipeline: ex.p.Metadata.Name, App: ex.p.AppName(), Stage: st.Name, Attempt: n,
		Trigger: ex.data().Run, Workdir: ex.workdir, Env: ex.p.Env, Secrets: ex.secrets, Outputs: ex.outputs,
		MayFetch: r.mayFetch(ex.run), Log: log, Logger: ex.log.With("stage", st.Name, "attempt", n),
		Release: &releaseStore{st: r.store, cmds: r.cmds, runID: ex.run.ID, app: ex.p.AppName()},
	}
	spec, err := pipeline.RenderSpec(st.Name, st.Spec(), ex.data())
	if err != nil {
		return stages.Result{}, err
	}
	stage, err := r.kinds.New(st.Kind(), spec)
	if err != nil {
		return stages.Result{}, err
	}
	if err := stage.Validate(); err != nil {
		return stages.Result{}, fmt.Errorf("invalid settings: %w", err)
	}
	timeout := r.opts.defaultTimeout
	if st.Timeout > 0 {
		timeout = time.Duration(st.Timeout)
	}
	actx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout{timeout})
	res, err := runSafely(actx, stage, run)
	cancel()
	if c, ok := stage.(stages.Cleaner); ok {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.cleanupTimeout)
		if cerr := c.Cleanup(cctx, run); cerr != nil {
			fmt.Fprintf(log, "slipway: cleanup failed: %v\n", cerr)
		}
		cancel()
	}
	var te errTimeout
	if err != nil && ctx.Err() == nil && errors.As(context.Cause(actx), &te) {
		return res, stages.Retryable(fmt.Errorf("%w: %w", te, err))
	}
	if err == nil {
		err = checkOutputs(res.Outputs)
	}
	return res, err
}

// runSafely turns a panicking stage into a failed attempt.
func runSafely(ctx context.Context, s stages.Stage, run *stages.Run) (res stages.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			run.Logger.Error("stage panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("stage panicked: %v", p)
		}
	}()
	return s.Run(ctx, run)
}

var outputKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkOutputs(outputs map[string]string) error {
	for k := range outputs {
		if !outputKey.MatchString(k) {
			return fmt.Errorf("stage returned an output named %q; names are letters, digits and _", k)
		}
	}
	return nil
}

// backoff is the wait before the retry after the k-th failure:
// base·2^(k-1), at most max (the k-th step of a wait.Backoff, the
// engine's one backoff policy).
func (r *Runner) backoff(k int) time.Duration {
	b := wait.Backoff{Duration: r.opts.backoffBase, Factor: 2, Cap: r.opts.backoffMax, Steps: math.MaxInt32}
	var d time.Duration
	for range max(k, 1) {
		d = b.Step()
	}
	return d
}

// newSink opens the log of attempt n of a stage.
func (r *Runner) newSink(ctx context.Context, ex *execution, stage string, n int) *sink {
	return &sink{ctx: context.WithoutCancel(ctx), store: r.store, notes: r.notes, mask: ex.mask, log: ex.log,
		observer: r.opts.observer, runID: ex.run.ID, stage: stage, attempt: n, limit: r.opts.maxLogBytes,
		runLeft: ex.logLeft, runLimit: ex.logLimit}
}

// say writes one line of the runner's own into a stage's log.
func (r *Runner) say(ctx context.Context, ex *execution, stage string, n int, format string, args ...any) {
	s := r.newSink(ctx, ex, stage, n)
	fmt.Fprintf(s, "slipway: "+format+"\n", args...)
}
