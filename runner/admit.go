package runner

import (
	"context"
	"errors"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

// Admission decides whether the engine runs a pipeline for a run. Intake
// asks it first (a refused run is stored ended, see Request.Refused); the
// runner asks again immediately before each stage starts, with the engine
// config as it is then, so that a check that refuses sits where the work
// starts. Admit returns "" to run, or why not in a sentence. It must be
// safe for concurrent use and cheap: it is called once per stage.
type Admission interface {
	Admit(ctx context.Context, run *store.Run, p *pipeline.Pipeline) string
}

// Placement is what an Admission may also say: where the build and run
// stages of a run that name no executor run ("kubernetes", or "" for
// their default, local). The engine's grants put the code pushed to a
// repository in Pods when it has a cluster.
type Placement interface {
	Executor(run *store.Run) string
}

// place sets the executor of p's stages that name none, as the
// admission's Placement says.
func (r *Runner) place(run *store.Run, p *pipeline.Pipeline) {
	if pl, ok := r.opts.admission.(Placement); ok {
		if e := pl.Executor(run); e != "" {
			p.DefaultExecutor(e)
		}
	}
}

// Fetching is what an Admission may also say: whether a run may fetch a
// repository besides the one its clone stage names — a submodule, which
// the pushed commit names and no check before the stage can see.
type Fetching interface {
	MayFetch(run *store.Run, url string) bool
}

// mayFetch is the stage's check of what it fetches (nil: anything).
func (r *Runner) mayFetch(run *store.Run) func(string) bool {
	f, ok := r.opts.admission.(Fetching)
	if !ok {
		return nil
	}
	return func(url string) bool { return f.MayFetch(run, url) }
}

// admitAll is the default Admission: every pipeline this engine can run
// (stages.Registry.Check) is admitted — `slipway run`, and engines that
// read no pipeline from a repository.
type admitAll struct{}

func (admitAll) Admit(context.Context, *store.Run, *pipeline.Pipeline) string { return "" }

// WithAdmission sets what admits each stage of a run before it starts
// (default: every stage). The engine passes its grants (triggers.Grants).
func WithAdmission(a Admission) Option {
	return func(o *options) error {
		if a == nil {
			return errors.New("WithAdmission: nil")
		}
		o.admission = a
		return nil
	}
}

// readmit asks, before stage i of x starts, whether the run is still
// admitted: "" if it is, else the reason to end it with.
func (r *Runner) readmit(ctx context.Context, ex *execution) string {
	if err := r.kinds.Check(ex.p); err != nil {
		return "refused: " + err.Error()
	}
	if why := r.opts.admission.Admit(ctx, ex.run, ex.p); why != "" {
		return "refused: " + why
	}
	return ""
}
