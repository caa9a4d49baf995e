package canary

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/stages/analysis"
)

// shift commits the weight, has Argo CD sync it and verifies it live.
func (r *rollout) shift(ctx context.Context, i, weight int) error {
	r.notes.StepStartedAt = time.Now()
	why := fmt.Sprintf("step %d: %d%%", i+1, weight)
	if err := r.move(ctx, release.Shift, i, weight, why); err != nil {
		return err
	}
	msg := fmt.Sprintf("slipway: %s canary at %d%%\n\nPipeline: %s\nRun: %d\nImage: %s\n", r.run.App, weight, r.run.Pipeline, r.run.ID, r.ref)
	commit, err := r.apply(ctx, msg, func(root string) (bool, error) { return r.router.SetWeight(root, weight) })
	if err != nil {
		return err
	}
	if _, err := r.verify(ctx, weight); err != nil {
		return err
	}
	if err := r.move(ctx, release.Shift, i, weight, why); err != nil { // with the live weight
		return err
	}
	r.say("step %d of %d: %d%% of traffic on the canary (config %.7s, verified live)", i+1, len(r.spec.Steps), weight, commit)
	return nil
}

// hold waits for a person at a gate (a pause step, manual promotion, an
// inconclusive analysis, a pause command) — or for d, when d > 0.
func (r *rollout) hold(ctx context.Context, i, weight int, why string, d time.Duration) verdict {
	if r.cp.State != release.Paused {
		r.notes.StepStartedAt = time.Now()
	}
	if err := r.move(ctx, release.Gate, i, weight, why); err != nil {
		return r.failed(ctx, err)
	}
	if d > 0 {
		r.say("paused for %s: %s", d, why)
	} else {
		r.say("paused at %d%%: %s; waiting for promote, resume or abort", weight, why)
		r.notify.send(r.event(string(release.Paused), fmt.Sprintf("release of %s paused at %d%%: %s", r.short(), weight, why)))
	}
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	for {
		cmd := r.waitCommand(ctx, timer)
		switch {
		case ctx.Err() != nil:
			return r.stopped(ctx)
		case cmd == nil: // the pause's duration is over
			return r.resumed(ctx, i, weight, release.GateOver, verdict{Action: next})
		}
		t, ok := r.take(cmd, weight)
		switch {
		case !ok:
			continue
		case t.Effect == release.RollBack:
			return r.abort(cmd)
		case t.Effect == release.PromoteAll:
			return verdict{Action: full, Actor: cmd.Actor}
		}
		return r.resumed(ctx, i, weight, release.Given(cmd.Command), verdict{Action: next, Actor: cmd.Actor})
	}
}

// take is the transition of a command on the release where it stands,
// said in the run's log; ok is false when the release cannot take it.
func (r *rollout) take(cmd *release.Request, weight int) (t release.Transition, ok bool) {
	t = release.Next(r.cp.State, release.Given(cmd.Command))
	if t.Refused != "" {
		r.say("%s by %s not taken at %d%%: %s", cmd.Command, cmd.Actor, weight, t.Refused)
		return t, false
	}
	r.say("%s by %s at %d%%", cmd.Command, cmd.Actor, weight)
	return t, true
}

// waitCommand returns the next command, or nil when ctx ends or timer
// fires first (a nil timer never fires). A command given on any engine
// wakes it; it also looks every pollEvery, in case a wake-up was lost.
func (r *rollout) waitCommand(ctx context.Context, timer <-chan time.Time) *release.Request {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		given := r.run.Release.RequestMade()
		cmd, err := r.run.Release.NextRequest(ctx)
		switch {
		case err != nil:
			r.say("reading commands: %v", err)
		case cmd != nil:
			return cmd
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer:
			return nil
		case <-given:
		case <-tick.C:
		}
	}
}

// resumed checkpoints the release past its gate (ev: the gate's time was
// up, or a person let it go).
func (r *rollout) resumed(ctx context.Context, i, weight int, ev release.Event, v verdict) verdict {
	if err := r.move(ctx, ev, i, weight, "resumed"); err != nil {
		return r.failed(ctx, err)
	}
	return v
}

// abort is the verdict of an abort: a person's, or an alert's (with the
// alert as the evidence).
func (r *rollout) abort(c *release.Request) verdict {
	v := verdict{Action: rollback, Trigger: "manual", Actor: c.Actor, Reason: "aborted by " + c.Actor, DetectedAt: c.At}
	var d release.CommandDetail
	if json.Unmarshal(c.Detail, &d) == nil && d.Alert != nil {
		v.Trigger, v.Actor, v.Evidence = "alert", d.AlertName, &release.RollbackDetail{Alert: *d.Alert}
		v.Reason = fmt.Sprintf("alert %s fired for %s", d.AlertName, r.run.App)
	}
	if d.Reason != "" {
		v.Reason += ": " + d.Reason
	}
	return v
}

// analyse measures step i every interval until the analysis decides, a
// command ends the step, or ctx ends. A step goes on only when its last
// measurement of every metric passed: an inconclusive or failed-to-measure
// round is measured again (and counts towards its limit) rather than
// letting more traffic onto a canary nobody could judge.
func (r *rollout) analyse(ctx context.Context, i, weight int, interval time.Duration) verdict {
	w, err := r.watch(ctx)
	if err != nil {
		r.say("reading the request counters at the step's start: %v; the step's success rate is measured over its interval instead", err)
		w = nil
	}
	var early release.Effect // a promote given during the step
	for {
		effect, v := r.await(ctx, w, i, weight, interval)
		if v != nil {
			return *v
		}
		if effect != "" {
			early = effect
		}
		d, evidence, passed, err := r.measure(ctx, w, i, weight, interval)
		switch {
		case err != nil:
			return r.failed(ctx, err)
		case d.Action == analysis.Rollback:
			return r.fromAnalysis(d, evidence)
		case d.Action == analysis.Pause:
			v := r.hold(ctx, i, weight, d.Reason, 0)
			if v.Action != next {
				return v
			}
			r.notes.Since = r.lastMeasurement(ctx)
			continue // measure this step again
		case !passed:
			r.say("measuring step %d again: not every metric passed", i+1)
			continue
		}
		if early == release.MeasureToFull {
			return verdict{Action: full}
		}
		return verdict{Action: next}
	}
}

// await waits out one analysis interval, taking commands meanwhile and,
// with a watcher, checking the comparisons with the stable every
// checkEvery. It returns the effect of a command that ends the wait early
// (promote, promote-full: measure now), or a verdict that ends the step
// (abort, a conclusive comparison, ctx done).
func (r *rollout) await(ctx context.Context, w *watcher, i, weight int, interval time.Duration) (release.Effect, *verdict) {
	end := time.Now().Add(interval)
	confidence := cmp.Or(r.spec.Analysis.Confidence, DefaultConfidence)
	for {
		slice := time.Until(end)
		if w != nil && w.continuous {
			slice = min(slice, w.every)
		}
		t := time.NewTimer(max(slice, 0))
		cmd := r.waitCommand(ctx, t.C)
		t.Stop()
		switch {
		case ctx.Err() != nil:
			v := r.stopped(ctx)
			return "", &v
		case cmd == nil && !time.Now().Before(end): // the interval is over
			return "", nil
		case cmd == nil: // time to check
			if err := w.check(ctx, r.querier); err != nil {
				r.say("checking the canary against the stable: %v", err)
				continue
			}
			if m, seq, worse := w.worse(r.spec.Analysis.Metrics, confidence); worse {
				v := r.verdictOn(ctx, w, m, seq, i, weight)
				return "", &v
			}
			continue
		}
		taken, ok := r.take(cmd, weight)
		switch {
		case !ok:
		case taken.Effect == release.RollBack:
			v := r.abort(cmd)
			return "", &v
		case taken.Effect == release.Hold:
			if v := r.hold(ctx, i, weight, "paused by "+cmd.Actor, 0); v.Action != next {
				return "", &v
			}
		case taken.Effect == release.MeasureUp, taken.Effect == release.MeasureToFull: // never past a failing analysis
			return taken.Effect, nil
		}
	}
}

// lastMeasurement is the ID of this run's newest measurement.
func (r *rollout) lastMeasurement(ctx context.Context) int64 {
	all, _ := r.run.Release.Measurements(ctx)
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].ID
}
