package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/triggers"
)

// queryInt reads an optional positive integer parameter, bounded.
func queryInt(r *http.Request, name string, def, maxValue int64) (int64, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > maxValue {
		return 0, fmt.Errorf("query parameter %s=%q must be a number from 0 to %d", name, raw, maxValue)
	}
	return n, nil
}

// page reads the limit and before parameters of a listing.
func page(r *http.Request, defLimit, maxLimit int64) (limit, before int64, err error) {
	if limit, err = queryInt(r, "limit", defLimit, maxLimit); err != nil {
		return 0, 0, err
	}
	before, err = queryInt(r, "before", 0, 1<<62)
	return limit, before, err
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, who *Token) {
	q := r.URL.Query()
	limit, before, err := page(r, 50, 500)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	f := store.RunFilter{Pipeline: q.Get("pipeline"), BeforeID: before, Limit: int(limit)}
	for _, st := range q["status"] {
		if !slices.Contains([]store.RunStatus{store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCancelled}, store.RunStatus(st)) {
			writeError(w, http.StatusBadRequest, "status %q is not one of queued, running, succeeded, failed, cancelled", st)
			return
		}
		f.Status = append(f.Status, store.RunStatus(st))
	}
	runs, err := s.store.ListRuns(r.Context(), f)
	if err != nil {
		s.internal(w, "listing runs", err)
		return
	}
	out := []RunView{}
	for _, run := range runs {
		if who.mayAccess(run.App) {
			out = append(out, runView(run))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, who *Token) {
	run := s.runFor(w, r, who)
	if run == nil {
		return
	}
	view, err := s.runDetail(r, run)
	if err != nil {
		s.internal(w, "reading run", err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, who *Token) {
	run := s.runFor(w, r, who)
	if run == nil {
		return
	}
	reason := "cancelled by " + who.Name
	if !s.auditFirst(w, r, who, "run.cancel", fmt.Sprintf("app/%s run/%d", run.App, run.ID), "pipeline "+run.Pipeline) {
		return
	}
	err := s.engine.Cancel(r.Context(), run.ID, reason)
	switch {
	case errors.Is(err, runner.ErrFinished):
		writeError(w, http.StatusConflict, "run %d has already finished (%s)", run.ID, run.Status)
		return
	case err != nil:
		s.internal(w, "cancelling run", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"run": run.ID, "result": "cancel requested"})
}

// triggerRequest is the body of POST /api/v1/pipelines/{name}/runs.
type triggerRequest struct {
	Ref    string            `json:"ref"` // branch name, refs/heads/… or refs/tags/…; default: the repository's branch
	SHA    string            `json:"sha"`
	Params map[string]string `json:"params"`
}

func (s *Server) triggerRun(w http.ResponseWriter, r *http.Request, who *Token) {
	var req triggerRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if _, err := pipeline.NormalizeRef(req.Ref, "main"); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.SHA != "" && !pipeline.IsCommitID(req.SHA) {
		writeError(w, http.StatusBadRequest, "sha %q is not a commit id", req.SHA)
		return
	}
	name := r.PathValue("name")
	p, repo, err := s.findPipeline(r, name, &req)
	if err != nil {
		writeError(w, http.StatusNotFound, "%v", err)
		return
	}
	if !who.mayAccess(p.AppName()) {
		writeError(w, http.StatusNotFound, "pipeline %s not found", name)
		return
	}
	params, err := p.ManualParams(req.Params)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !s.auditFirst(w, r, who, "run.trigger", fmt.Sprintf("pipeline/%s app/%s", name, p.AppName()), "at "+req.Ref) {
		return
	}
	run, _, err := s.engine.Submit(r.Context(), repo.Request(p,
		store.Trigger{Event: pipeline.EventManual, Repo: repo.Config.URL, Ref: req.Ref, SHA: req.SHA, Actor: who.Name, Params: params}, ""))
	if err != nil {
		s.internal(w, "starting run", err)
		return
	}
	writeJSON(w, http.StatusCreated, runView(run))
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
// request's ref (which it completes). The ref and sha are already checked.
func (s *Server) findPipeline(r *http.Request, name string, req *triggerRequest) (*pipeline.Pipeline, *triggers.Repo, error) {
	for _, repo := range s.repos {
		ref, err := pipeline.NormalizeRef(req.Ref, repo.Config.DefaultBranch())
		if err != nil {
			return nil, nil, err
		}
		for _, src := range repo.Sources {
			p, err := src.Load(r.Context(), ref, req.SHA)
			if err != nil {
				s.log.Warn("reading pipeline for a manual run", "source", src.String(), "err", err)
				continue
			}
			if p.Metadata.Name == name {
				req.Ref = ref
				return p, repo, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("pipeline %s not found", name)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, who *Token) {
	limit, err := queryInt(r, "limit", 50, 500)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	list, err := s.store.ListDeliveries(r.Context(), store.DeliveryFilter{Status: r.URL.Query().Get("status"), Repo: r.URL.Query().Get("repo"), Limit: int(limit)})
	if err != nil {
		s.internal(w, "listing deliveries", err)
		return
	}
	out := []DeliveryView{}
	for _, d := range list {
		if s.deliveryInScope(r.Context(), who, d) {
			out = append(out, deliveryView(d))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, who *Token) {
	limit, before, err := page(r, 100, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	entries, err := s.store.ListAudit(r.Context(), before, int(limit))
	if err != nil {
		s.internal(w, "reading the audit log", err)
		return
	}
	visible := []store.AuditEntry{}
	for _, e := range entries {
		if s.auditInScope(r.Context(), who, e) {
			visible = append(visible, e)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": visible})
}
