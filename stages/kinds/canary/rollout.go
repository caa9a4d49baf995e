package canary

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/analysis"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/gitops"
)

// syncer is what the canary needs of Argo CD.
type syncer interface {
	SyncAndWait(ctx context.Context, app, revision string, timeout time.Duration, log func(string, ...any)) (argocd.Result, error)
	Close() error
}

// rollout is one canary release in progress, carried out: it asks release.Next
// where each event leaves the release and does what the transition says.
type rollout struct {
	spec               pipeline.CanarySpec
	run                *stages.Run
	argo               syncer
	writer             *gitops.Writer
	router             Router
	querier            analysis.Querier // nil without metrics
	notify             *notifier
	say                func(string, ...any)
	ref, image, digest string

	cp    release.Checkpoint
	notes notes
}

// notes is the canary's own part of the checkpoint.
type notes struct {
	StableRef     string   `json:"stableRef"`     // what the stable workload ran before the release
	ReleaseCommit string   `json:"releaseCommit"` // the config-repo commit that deployed the canary
	Since         int64    `json:"since"`         // measurements up to this ID no longer count (a person resumed)
	Pending       *verdict `json:"pending,omitempty"`
	LastCommit    string   `json:"lastCommit,omitempty"`
	release.Progress
}

// verdict is where a step (or a gate) leaves the release.
type verdict struct {
	Action     string                  `json:"action"`  // next, full, rollback
	Trigger    string                  `json:"trigger"` // analysis, manual, alert, error
	Actor      string                  `json:"actor,omitempty"`
	Reason     string                  `json:"reason"`
	Evidence   *release.RollbackDetail `json:"evidence,omitempty"`
	DetectedAt time.Time               `json:"detectedAt"`
}

const (
	next     = "next"
	full     = "full"
	rollback = "rollback"
)

func (r *rollout) close() {
	r.notify.wait(10 * time.Second)
	r.argo.Close()
}

func (r *rollout) short() string {
	return fmt.Sprintf("%s@%.19s", r.image[strings.LastIndex(r.image, "/")+1:], r.digest)
}

// drive takes the release from its checkpoint to its end.
func (r *rollout) drive(ctx context.Context) (stages.Result, error) {
	switch r.cp.State {
	case release.Promoted:
		return r.result(), nil
	case release.RolledBack:
		return r.result(), fmt.Errorf("rolled back: %s", r.cp.Reason)
	case release.RollingBack:
		v := verdict{Action: rollback, Trigger: "error", Reason: r.cp.Reason, DetectedAt: time.Now()}
		if r.notes.Pending != nil {
			v = *r.notes.Pending
		}
		return r.rollback(ctx, v)
	case release.Promoting:
		return r.promote(ctx)
	case release.None:
		r.notes.Image, r.notes.Digest, r.notes.Steps = r.ref, r.digest, r.plan()
		if err := r.move(ctx, release.Start, 0, 0, "started"); err != nil {
			return stages.Result{}, err
		}
		r.notify.send(r.event("started", fmt.Sprintf("release of %s started (%s)", r.short(), r.stepsText())))
		r.reportScrape(ctx)
	}
	v, err := r.advance(ctx)
	if err != nil {
		return stages.Result{}, err // the engine is shutting down: resumed at the next start
	}
	if v.Action == rollback {
		return r.rollback(ctx, v)
	}
	return r.promote(ctx)
}

// advance walks the steps from the checkpoint; it returns the verdict
// (full or next: promote; rollback), or an error only when the engine is
// shutting down.
func (r *rollout) advance(ctx context.Context) (verdict, error) {
	steps := r.spec.Steps
	for i := r.cp.Step; i < len(steps); i++ {
		var v verdict
		if p := steps[i].Pause; p != nil {
			v = r.hold(ctx, i, r.cp.Weight, "pause step", time.Duration(p.Duration))
		} else {
			v = r.step(ctx, i, steps[i])
		}
		if ctx.Err() != nil && stages.ShuttingDown(ctx) {
			return v, ctx.Err()
		}
		if v.Action != next {
			return v, nil
		}
	}
	if r.spec.Promotion == "manual" {
		v := r.hold(ctx, len(steps)-1, r.cp.Weight, "promotion: manual — run slipway promote "+r.run.App, 0)
		if ctx.Err() != nil && stages.ShuttingDown(ctx) {
			return v, ctx.Err()
		}
		return v, nil
	}
	return verdict{Action: full}, nil
}

// step shifts traffic to s.Weight and analyses it.
func (r *rollout) step(ctx context.Context, i int, s pipeline.Step) verdict {
	if err := r.shift(ctx, i, s.Weight); err != nil {
		return r.failed(ctx, fmt.Errorf("shifting %d%% of traffic to the canary: %w", s.Weight, err))
	}
	interval := time.Duration(s.Interval)
	if interval == 0 {
		interval = time.Duration(r.spec.Interval)
	}
	if interval == 0 {
		interval = DefaultInterval
	}
	return r.analyse(ctx, i, s.Weight, interval)
}

// failed is the verdict after an error: a rollback, because traffic may
// be on a canary nobody is measuring.
func (r *rollout) failed(ctx context.Context, err error) verdict {
	if ctx.Err() != nil {
		return r.stopped(ctx)
	}
	return verdict{Action: rollback, Trigger: "error", Reason: err.Error(), DetectedAt: time.Now()}
}

// stopped is the verdict when ctx ended without a shutdown: the run was
// cancelled or the stage timed out. That rolls back.
func (r *rollout) stopped(ctx context.Context) verdict {
	return verdict{Action: rollback, Trigger: "manual", Actor: "engine",
		Reason: fmt.Sprintf("the run stopped mid-release (%v)", context.Cause(ctx)), DetectedAt: time.Now()}
}

// move checkpoints the release where event ev leaves it (release.Next);
// an event the release cannot take is an error of the stage's own.
func (r *rollout) move(ctx context.Context, ev release.Event, step, weight int, reason string) error {
	t := release.Next(r.cp.State, ev)
	if t.Refused != "" {
		return fmt.Errorf("the release cannot take %s: %s", ev, t.Refused)
	}
	data, err := json.Marshal(r.notes)
	if err != nil {
		return err
	}
	r.cp = release.Checkpoint{State: t.State, Step: step, Weight: weight, Reason: reason, Data: data}
	if err := r.run.Release.Save(context.WithoutCancel(ctx), r.cp); err != nil {
		return fmt.Errorf("checkpointing the release: %w", err)
	}
	return nil
}

// plan is the configured steps, as the release page shows them.
func (r *rollout) plan() []release.PlannedStep {
	var out []release.PlannedStep
	for _, st := range r.spec.Steps {
		switch {
		case st.Pause == nil:
			iv := time.Duration(st.Interval)
			if iv == 0 {
				iv = time.Duration(r.spec.Interval)
			}
			if iv == 0 {
				iv = DefaultInterval
			}
			out = append(out, release.PlannedStep{Weight: st.Weight, Interval: iv.String()})
		case st.Pause.Duration > 0:
			out = append(out, release.PlannedStep{Pause: time.Duration(st.Pause.Duration).String()})
		default:
			out = append(out, release.PlannedStep{Pause: "until promoted"})
		}
	}
	return out
}

func (r *rollout) stepsText() string {
	s := ""
	for i, st := range r.spec.Steps {
		if i > 0 {
			s += " → "
		}
		if st.Pause != nil {
			s += "pause"
		} else {
			s += fmt.Sprintf("%d%%", st.Weight)
		}
	}
	return s
}

func (r *rollout) result() stages.Result {
	return stages.Result{Outputs: map[string]string{"outcome": string(r.cp.State), "weight": fmt.Sprint(r.cp.Weight),
		"commit": r.notes.LastCommit, "image": r.ref, "digest": r.digest, "stable": r.notes.StableRef}}
}
