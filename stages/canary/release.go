package canary

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/analysis"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/gitops"
)

// States of a release, as checkpointed.
const (
	Progressing = "progressing"
	Paused      = "paused"
	Promoting   = "promoting"
	RollingBack = "rolling-back"
	Promoted    = "promoted"
	RolledBack  = "rolled-back"
)

// syncer is what the canary needs of Argo CD.
type syncer interface {
	SyncAndWait(ctx context.Context, app, revision string, timeout time.Duration, log func(string, ...any)) (argocd.Result, error)
	Close() error
}

// release is one canary release in progress.
type release struct {
	spec               pipeline.CanarySpec
	run                *stages.Run
	argo               syncer
	writer             *gitops.Writer
	router             Router
	querier            analysis.Querier // nil without metrics
	notify             *notifier
	say                func(string, ...any)
	ref, image, digest string

	cp    stages.Checkpoint
	notes notes
}

// notes is the canary's own part of the checkpoint.
type notes struct {
	StableRef     string   `json:"stableRef"`     // what the stable workload ran before the release
	ReleaseCommit string   `json:"releaseCommit"` // the config-repo commit that deployed the canary
	Since         int64    `json:"since"`         // measurements up to this ID no longer count (a person resumed)
	Pending       *verdict `json:"pending,omitempty"`
	LastCommit    string   `json:"lastCommit,omitempty"`
	stages.ReleaseProgress
}

// verdict is where a step (or a gate) leaves the release.
type verdict struct {
	Action     string                 `json:"action"`  // next, full, rollback
	Trigger    string                 `json:"trigger"` // analysis, manual, alert, error
	Actor      string                 `json:"actor,omitempty"`
	Reason     string                 `json:"reason"`
	Evidence   *stages.RollbackDetail `json:"evidence,omitempty"`
	DetectedAt time.Time              `json:"detectedAt"`
}

const (
	next     = "next"
	full     = "full"
	rollback = "rollback"
)

func (r *release) close() {
	r.notify.wait(10 * time.Second)
	r.argo.Close()
}

func (r *release) short() string {
	return fmt.Sprintf("%s@%.19s", r.image[strings.LastIndex(r.image, "/")+1:], r.digest)
}

// drive takes the release from its checkpoint to its end.
func (r *release) drive(ctx context.Context) (stages.Result, error) {
	switch r.cp.State {
	case Promoted:
		return r.result(), nil
	case RolledBack:
		return r.result(), fmt.Errorf("rolled back: %s", r.cp.Reason)
	case RollingBack:
		v := verdict{Action: rollback, Trigger: "error", Reason: r.cp.Reason, DetectedAt: time.Now()}
		if r.notes.Pending != nil {
			v = *r.notes.Pending
		}
		return r.rollback(ctx, v)
	case Promoting:
		return r.promote(ctx)
	case "":
		r.notes.Image, r.notes.Digest, r.notes.Steps = r.ref, r.digest, r.plan()
		if err := r.save(ctx, Progressing, 0, 0, "started"); err != nil {
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
func (r *release) advance(ctx context.Context) (verdict, error) {
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
func (r *release) step(ctx context.Context, i int, s pipeline.Step) verdict {
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
func (r *release) failed(ctx context.Context, err error) verdict {
	if ctx.Err() != nil {
		return r.stopped(ctx)
	}
	return verdict{Action: rollback, Trigger: "error", Reason: err.Error(), DetectedAt: time.Now()}
}

// stopped is the verdict when ctx ended without a shutdown: the run was
// cancelled or the stage timed out. That rolls back.
func (r *release) stopped(ctx context.Context) verdict {
	return verdict{Action: rollback, Trigger: "manual", Actor: "engine",
		Reason: fmt.Sprintf("the run stopped mid-release (%v)", context.Cause(ctx)), DetectedAt: time.Now()}
}

// save checkpoints the release.
func (r *release) save(ctx context.Context, state string, step, weight int, reason string) error {
	data, err := json.Marshal(r.notes)
	if err != nil {
		return err
	}
	r.cp = stages.Checkpoint{State: state, Step: step, Weight: weight, Reason: reason, Data: data}
	if err := r.run.Release.Save(context.WithoutCancel(ctx), r.cp); err != nil {
		return fmt.Errorf("checkpointing the release: %w", err)
	}
	return nil
}

// plan is the configured steps, as the release page shows them.
func (r *release) plan() []stages.PlannedStep {
	var out []stages.PlannedStep
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
			out = append(out, stages.PlannedStep{Weight: st.Weight, Interval: iv.String()})
		case st.Pause.Duration > 0:
			out = append(out, stages.PlannedStep{Pause: time.Duration(st.Pause.Duration).String()})
		default:
			out = append(out, stages.PlannedStep{Pause: "until promoted"})
		}
	}
	return out
}

func (r *release) stepsText() string {
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

func (r *release) result() stages.Result {
	return stages.Result{Outputs: map[string]string{"outcome": r.cp.State, "weight": fmt.Sprint(r.cp.Weight),
		"commit": r.notes.LastCommit, "image": r.ref, "digest": r.digest, "stable": r.notes.StableRef}}
}
