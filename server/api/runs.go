package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/triggers"
)

// page reads the limit and before parameters of a listing.
func page(r *http.Request, defLimit, maxLimit int64) (limit, before int64, err error) {
	if limit, err = view.QueryInt(r, "limit", defLimit, maxLimit); err != nil {
		return 0, 0, err
	}
	before, err = view.QueryInt(r, "before", 0, 1<<62)
	return limit, before, err
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	q := r.URL.Query()
	limit, before, err := page(r, 50, 500)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	f := store.RunFilter{Pipeline: q.Get("pipeline"), Repository: q.Get("repository"), BeforeID: before, Limit: int(limit)}
	for _, st := range q["status"] {
		if !slices.Contains([]store.RunStatus{store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCancelled}, store.RunStatus(st)) {
			view.Error(w, http.StatusBadRequest, "status %q is not one of queued, running, succeeded, failed, cancelled", st)
			return
		}
		f.Status = append(f.Status, store.RunStatus(st))
	}
	runs, err := a.store.ListRuns(r.Context(), f)
	if err != nil {
		a.internal(w, "listing runs", err)
		return
	}
	view.JSON(w, http.StatusOK, map[string]any{"runs": visible(who, runs, func(r *store.Run) string { return r.App }, view.Run)})
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	run := a.runFor(w, r, who)
	if run == nil {
		return
	}
	detail, err := a.RunDetail(r.Context(), run)
	if err != nil {
		a.internal(w, "reading run", err)
		return
	}
	view.JSON(w, http.StatusOK, detail)
}

func (a *API) cancelRun(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	run := a.runFor(w, r, who)
	if run == nil {
		return
	}
	reason := "cancelled by " + who.Name
	if !a.auditFirst(w, r, who, "run.cancel", fmt.Sprintf("app/%s run/%d", run.App, run.ID), "pipeline "+run.Pipeline) {
		return
	}
	err := a.engine.Cancel(r.Context(), run.ID, reason)
	switch {
	case errors.Is(err, runner.ErrFinished):
		view.Error(w, http.StatusConflict, "run %d has already finished (%s)", run.ID, run.Status)
		return
	case err != nil:
		a.internal(w, "cancelling run", err)
		return
	}
	view.JSON(w, http.StatusAccepted, map[string]any{"run": run.ID, "result": "cancel requested"})
}

// triggerRequest is the body of POST /api/v1/pipelines/{name}/runs.
type triggerRequest struct {
	Ref    string            `json:"ref"` // branch name, refs/heads/… or refs/tags/…; default: the repository's branch
	SHA    string            `json:"sha"`
	Params map[string]string `json:"params"`
	// Repository names (repositories[].name) the repository whose pushed
	// pipeline is meant, when pipelines of several share the name.
	Repository string `json:"repository"`
}

func (a *API) triggerRun(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	var req triggerRequest
	if err := decodeBody(w, r, &req); err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if _, err := pipeline.NormalizeRef(req.Ref, "main"); err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.SHA != "" && !pipeline.IsCommitID(req.SHA) {
		view.Error(w, http.StatusBadRequest, "sha %q is not a commit id", req.SHA)
		return
	}
	name := r.PathValue("name")
	p, repo, err := a.findPipeline(r, who, name, &req)
	var ambiguous errAmbiguous
	switch {
	case errors.As(err, &ambiguous):
		view.Error(w, http.StatusConflict, "%v", err)
		return
	case err != nil:
		view.Error(w, http.StatusNotFound, "%v", err)
		return
	}
	params, err := p.ManualParams(req.Params)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !a.auditFirst(w, r, who, "run.trigger", fmt.Sprintf("pipeline/%s app/%s", name, p.AppName()), "at "+req.Ref) {
		return
	}
	run, _, err := a.engine.Submit(r.Context(), repo.Request(p,
		store.Trigger{Event: pipeline.EventManual, Repo: repo.Config.URL, Ref: req.Ref, SHA: req.SHA, Actor: who.Name, Params: params}, ""))
	if err != nil {
		a.internal(w, "starting run", err)
		return
	}
	view.JSON(w, http.StatusCreated, view.Run(run))
}

// decodeBody decodes a bounded JSON body strictly into v; an empty body
// leaves v as it is (all defaults).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		return fmt.Errorf("reading request body (at most %d bytes): %v", maxAPIBody, err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed request body: %v", err)
	}
	if dec.More() {
		return errors.New("malformed request body: more than one JSON value")
	}
	return nil
}

// findPipeline finds pipeline name among the watched repositories, at the
// request's ref (which it completes); the ref and sha are already checked.
// Only pipelines of apps the token may access are seen. The operator's
// pipelines come first (their names are unique in the engine config); a
// pipeline read from a repository is found only when no other repository
// pushed one of that name, or the request names its repository: anyone
// who can push to one repository writes those names, and must not take
// another team's.
func (a *API) findPipeline(r *http.Request, who *auth.Token, name string, req *triggerRequest) (*pipeline.Pipeline, *triggers.Repo, error) {
	type found struct {
		p    *pipeline.Pipeline
		repo *triggers.Repo
		ref  string
	}
	var pushed []found
	for pass := range 2 { // the operator's pipelines, then those read from repositories
		for _, repo := range a.repos {
			if req.Repository != "" && repo.Config.Name != req.Repository {
				continue
			}
			ref, err := pipeline.NormalizeRef(req.Ref, repo.Config.DefaultBranch())
			if err != nil {
				return nil, nil, err
			}
			for _, src := range repo.Sources {
				op, operators := src.(triggers.FileSource)
				switch {
				case pass == 0 && operators:
					if op.P.Metadata.Name == name && who.MayAccess(op.P.AppName()) {
						req.Ref = ref
						return op.P, repo, nil
					}
				case pass == 1 && !operators:
					p, err := src.Load(r.Context(), ref, req.SHA)
					if err != nil {
						a.log.Warn("reading pipeline for a manual run", "source", src.String(), "err", err)
						continue
					}
					if p.Metadata.Name == name && who.MayAccess(p.AppName()) {
						pushed = append(pushed, found{p, repo, ref})
					}
				}
			}
		}
	}
	switch len(pushed) {
	case 0:
		return nil, nil, fmt.Errorf("pipeline %s not found", name)
	case 1:
		req.Ref = pushed[0].ref
		return pushed[0].p, pushed[0].repo, nil
	}
	var repos []string
	for _, f := range pushed {
		repos = append(repos, f.repo.Config.Name)
	}
	return nil, nil, errAmbiguous(fmt.Sprintf("pipeline %s is read from more than one repository (%s): name the one you mean (\"repository\": NAME)", name, strings.Join(repos, ", ")))
}

// errAmbiguous is a pipeline name that more than one repository pushed.
type errAmbiguous string

func (e errAmbiguous) Error() string { return string(e) }

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	limit, err := view.QueryInt(r, "limit", 50, 500)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	list, err := a.store.ListDeliveries(r.Context(), store.DeliveryFilter{Status: r.URL.Query().Get("status"), Repo: r.URL.Query().Get("repo"), Limit: int(limit)})
	if err != nil {
		a.internal(w, "listing deliveries", err)
		return
	}
	out := []view.DeliveryView{}
	for _, d := range list {
		if a.DeliveryInScope(r.Context(), who, d) {
			out = append(out, view.Delivery(d))
		}
	}
	view.JSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	limit, before, err := page(r, 100, 1000)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	entries, err := a.store.ListAudit(r.Context(), before, int(limit))
	if err != nil {
		a.internal(w, "reading the audit log", err)
		return
	}
	visible := []store.AuditEntry{}
	for _, e := range entries {
		if a.AuditInScope(r.Context(), who, e) {
			visible = append(visible, e)
		}
	}
	view.JSON(w, http.StatusOK, map[string]any{"entries": visible})
}
