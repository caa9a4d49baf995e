package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

// execution is one run being executed by this process.
type execution struct {
	run      *store.Run
	p        *pipeline.Pipeline
	secrets  map[string]string
	mask     *masker
	workdir  string
	stages   []*store.Stage               // as stored when execution began
	outputs  map[string]map[string]string // of stages that succeeded, by name
	render   *pipeline.Budget             // what its templates may still render
	logLeft  *atomic.Int64                // what its logs may still keep
	logLimit int64                        // what they could keep at its start
	log      *slog.Logger
}

// execute drives a claimed run to its end (or back to the queue when the
// engine shuts down under it).
func (r *Runner) execute(ctx context.Context, run *store.Run) {
	ex, err := r.restore(ctx, run)
	if err != nil {
		status, reason := store.RunFailed, err.Error()
		if ctx.Err() != nil { // cancelled or shut down while preparing: not the run's fault
			if st, why := r.interruption(ctx); st == store.StageCancelled {
				status, reason = store.RunCancelled, why
			} else {
				status, reason = store.RunQueued, "engine shutting down before the first stage; resumes at the next start"
			}
		}
		r.finish(ctx, &execution{run: run, log: r.log}, status, reason)
		return
	}
	for i := range ex.p.Stages {
		if status, reason := r.runStage(ctx, ex, i); status != "" {
			r.finish(ctx, ex, status, reason)
			return
		}
	}
	r.finish(ctx, ex, store.RunSucceeded, "")
}

// restore rebuilds what a run needs from what was stored when it was
// queued: the pipeline as it was then, its secrets, its workdir, and the
// state of its stages (non-empty when the run is being resumed).
func (r *Runner) restore(ctx context.Context, run *store.Run) (*execution, error) {
	p, err := pipeline.ParseStored(run.PipelineFile, run.PipelineSource, run.Untrusted)
	if err != nil {
		return nil, fmt.Errorf("the pipeline stored with the run no longer validates: %v", err)
	}
	r.place(run, p)
	secrets, err := r.opts.secrets.Resolve(ctx, run, p)
	if err != nil {
		return nil, err
	}
	values := make([]string, 0, len(secrets))
	for _, v := range secrets {
		values = append(values, v)
	}
	// The workdir is made by the first stage that writes it (clone): a run
	// whose stages need none (a deploy, a canary) makes none.
	workdir := run.Workdir
	if workdir == "" {
		workdir = filepath.Join(r.opts.workRoot, strconv.FormatInt(run.ID, 10))
	}
	rows, err := r.storedStages(ctx, run, p)
	if err != nil {
		return nil, err
	}
	if len(rows) != len(p.Stages) {
		return nil, fmt.Errorf("run has %d stored stages but its pipeline has %d", len(rows), len(p.Stages))
	}
	logLeft, logLimit := r.logBudget(run)
	return &execution{
		logLeft: logLeft, logLimit: logLimit,
		run: run, p: p, secrets: secrets, mask: newMasker(values, authUsernames(p)...), workdir: workdir,
		stages: rows, outputs: map[string]map[string]string{}, render: pipeline.NewBudget(pipeline.MaxRunRender),
		log: r.log.With("run", run.ID, "pipeline", run.Pipeline),
	}, nil
}

// storedStages returns the run's stages as stored. A run never resumed
// is claimed for the first time: its stages are those it was queued
// with, all pending, and are not read again.
func (r *Runner) storedStages(ctx context.Context, run *store.Run, p *pipeline.Pipeline) ([]*store.Stage, error) {
	if run.Resumes > 0 {
		return r.store.ListStages(ctx, run.ID)
	}
	pending := pendingStages(p)
	rows := make([]*store.Stage, len(pending))
	for i := range pending {
		rows[i] = &pending[i]
	}
	return rows, nil
}

// finish records how the run ended. It runs on a context of its own: the
// end of a cancelled run must still be written down.
func (r *Runner) finish(ctx context.Context, ex *execution, status store.RunStatus, reason string) {
	reason = ex.mask.Mask(reason)
	if leaseLost(ctx) {
		ex.log.Warn("run left to the engine that takes it over", "status", status, "reason", reason)
		return
	}
	if stoppedForTheStore(ctx) {
		ex.log.Warn("run stopped until the store takes writes again", "status", status, "reason", reason)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// First, so a finished run never shows pending stages; a run that
	// succeeded took every stage to its end.
	if status != store.RunQueued && status != store.RunSucceeded {
		r.skipPending(ctx, ex.run.ID, fmt.Sprintf("not run: the run %s", status))
	}
	ok, err := r.transition(ctx, ex.run.ID, status, reason)
	if err != nil || !ok {
		ex.log.Error("recording the end of a run", "status", status, "ok", ok, "err", err)
		if refusedByStore(err) { // its end is not written: resumed once the store takes writes
			r.storeLost(ex.run.ID, err)
		}
		return
	}
	// A workdir the engine made goes with the run's end (a resumed run
	// keeps it): pushes must not fill the engine's disk with checkouts.
	if status != store.RunQueued && ex.workdir != "" && ex.run.Workdir == "" {
		if err := os.RemoveAll(ex.workdir); err != nil {
			ex.log.Warn("removing the run's workdir", "dir", ex.workdir, "err", err)
		}
	}
	r.opts.observer.RunFinished(status)
	ex.log.Info("run ended", "status", status, "reason", reason)
}

// skipPending marks the stages that never started as skipped.
func (r *Runner) skipPending(ctx context.Context, id int64, reason string) {
	if err := r.store.SkipPending(ctx, id, reason, time.Now()); err != nil {
		r.log.Error("skipping the stages that never started", "run", id, "err", err)
	}
	r.changed(id)
}

// templateData is what templates of run id see.
func templateData(p *pipeline.Pipeline, id int64, trig store.Trigger, secrets map[string]string, outputs map[string]map[string]string) *pipeline.Data {
	rd := pipeline.RunData{ID: id, Event: trig.Event, Repo: trig.Repo, Ref: trig.Ref, SHA: trig.SHA}
	rd.Branch, _ = strings.CutPrefix(trig.Ref, "refs/heads/")
	if rd.Branch == trig.Ref {
		rd.Branch = ""
	}
	if tag, ok := strings.CutPrefix(trig.Ref, "refs/tags/"); ok {
		rd.Tag = tag
	}
	rd.ShortSHA = trig.SHA[:min(7, len(trig.SHA))]
	return &pipeline.Data{
		Pipeline: p.Metadata.Name, App: p.AppName(), Run: rd,
		Params: trig.Params, Secrets: secrets, Stages: outputs,
	}
}

func (ex *execution) data() *pipeline.Data {
	return templateData(ex.p, ex.run.ID, ex.run.Trigger, ex.secrets, ex.outputs).Charging(ex.render)
}

// authUsernames lists the user names the pipeline pairs with its tokens,
// so USER:TOKEN in base64 (Basic auth, Docker config) is masked too.
func authUsernames(p *pipeline.Pipeline) []string {
	var out []string
	for _, st := range p.Stages {
		var a pipeline.Auth
		switch {
		case st.Clone != nil:
			a = st.Clone.Auth
		case st.Build != nil:
			a = st.Build.Auth
		case st.Scan != nil:
			a = st.Scan.Auth
		case st.Deploy != nil:
			a = st.Deploy.GitOps.Auth
		case st.Canary != nil:
			a = st.Canary.GitOps.Auth
		}
		if a.Username != "" {
			out = append(out, a.Username)
		}
	}
	return out
}
