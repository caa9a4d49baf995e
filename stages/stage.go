package stages

import (
	"context"
	"io"
	"log/slog"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/release"
)

// Stage is one attempt of one stage of one run.
//
// Lifecycle, as the runner drives it:
//
//  1. The runner renders the stage's settings (templates over earlier
//     outputs) and calls the kind's Factory, which returns a fresh Stage.
//     A Stage value serves exactly one attempt; a retry gets a new one.
//  2. Validate is called once, before Run. An error there is a problem
//     with the settings: the stage fails without retries.
//  3. Run is called once. It returns promptly when ctx is done (cancelled
//     run, stage timeout, engine shutdown), with an error wrapping
//     ctx.Err(). It writes progress for people to run.Log. An error
//     marked with Retryable may be retried, if the stage has retries left.
//  4. If the Stage is also a Cleaner, Cleanup is called once after Run
//     returned, whatever the outcome, on a context that is not cancelled
//     with the run but has its own timeout.
//
// Stages of one run execute one at a time. Stages of different runs may
// execute concurrently, so a kind keeps no unguarded shared state.
type Stage interface {
	Validate() error
	Run(ctx context.Context, run *Run) (Result, error)
}

// Cleaner is implemented by stages that leave something behind (a sandbox,
// a Pod) that must be removed even after cancellation or failure.
// Cleanup must be safe to call after a Run that failed half-way.
type Cleaner interface {
	Cleanup(ctx context.Context, run *Run) error
}

// Factory makes the Stage for one attempt from the stage's rendered
// settings: a pointer to the kind's spec type (*pipeline.CloneSpec, …).
type Factory func(spec any) (Stage, error)

// Run is what a stage attempt knows about the run it belongs to. It is
// read-only for the stage, except Log.
type Run struct {
	ID       int64
	Pipeline string
	App      string
	Stage    string // the stage's name in the pipeline
	Attempt  int    // 1 for the first attempt
	Trigger  pipeline.RunData
	Workdir  string            // shared by the stages of the run: clone makes and writes it, build reads it; it exists once a stage made it
	Env      map[string]string // the pipeline's env
	Secrets  map[string]string // resolved secret values by name; already masked in Log
	Outputs  map[string]map[string]string
	// MayFetch says whether the run may fetch the repository at url
	// besides the one its clone stage names (a submodule): the engine
	// config's cloneFrom, for a pipeline read from a repository. nil: any.
	MayFetch func(url string) bool

	// Log is the stage log: written line by line, secrets masked, stored
	// and streamed to followers. Safe for concurrent use.
	Log io.Writer
	// Logger is for the engine's own structured logs, with run and stage attached.
	Logger *slog.Logger
	// Release keeps a canary's checkpoint, evidence and commands; set by
	// the runner for every attempt.
	Release release.Store
}

// Result is what an attempt leaves behind. Outputs (of a successful
// attempt) are read by later stages' templates as {{ .Stages.NAME.KEY }}.
// Artifacts are stored with the run even when Run also returns an error:
// the scan report of an image that failed the gate is the evidence.
type Result struct {
	Outputs   map[string]string
	Artifacts []Artifact
}

// Artifact is a document a stage produced: a scan report, an SBOM.
type Artifact struct {
	Name      string // unique within the attempt, e.g. trivy-report.json
	MediaType string
	Subject   string // what it describes, e.g. an image digest
	Data      []byte
}
