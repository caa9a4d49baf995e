package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// apiCommands are the commands people give a release in flight:
// POST /api/v1/apps/{app}/{command} (promote-full is promote with full: true).
var apiCommands = []release.Command{release.Promote, release.Abort, release.Pause, release.Resume}

var appName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// commandRequest is the optional body of a release command.
type commandRequest struct {
	Full   bool   `json:"full"`   // promote: skip the remaining steps (never a failing analysis)
	Reason string `json:"reason"` // abort: why, for the record
}

// inFlight returns the release of app in flight, answering the request
// itself when there is none (or the caller may not see the app).
func (s *Server) inFlight(w http.ResponseWriter, r *http.Request, who *Token, app string) *store.Release {
	if !appName.MatchString(app) {
		writeError(w, http.StatusBadRequest, "%q is not an app name", app)
		return nil
	}
	if !who.mayAccess(app) {
		writeError(w, http.StatusNotFound, "app %s not found", app)
		return nil
	}
	rels, err := s.store.ListReleases(r.Context(), app, true)
	if err != nil {
		s.internal(w, "reading releases", err)
		return nil
	}
	if len(rels) == 0 {
		writeError(w, http.StatusConflict, "no release of %s is in flight", app)
		return nil
	}
	return rels[0]
}

func (s *Server) releaseCommand(name release.Command) handler {
	return func(w http.ResponseWriter, r *http.Request, who *Token) {
		var req commandRequest
		if err := decodeBody(w, r, &req); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		if len(req.Reason) > 1000 {
			writeError(w, http.StatusBadRequest, "reason is longer than 1000 characters")
			return
		}
		if req.Full && name != release.Promote {
			writeError(w, http.StatusBadRequest, "full goes with promote only")
			return
		}
		app := r.PathValue("app")
		rel := s.inFlight(w, r, who, app)
		if rel == nil {
			return
		}
		cmd := name
		if req.Full {
			cmd = release.PromoteFull
		}
		if why := release.Refusal(rel.State, cmd); why != "" {
			writeError(w, http.StatusConflict, "%s not sent to the release of %s (run %d): %s", cmd, app, rel.RunID, why)
			return
		}
		detail, _ := json.Marshal(release.CommandDetail{Reason: req.Reason})
		c := &store.Command{RunID: rel.RunID, Name: cmd, Actor: who.Name, Detail: detail, CreatedAt: time.Now()}
		audit := store.AuditEntry{Time: c.CreatedAt, Actor: who.Name, Action: "release." + string(cmd),
			Target: fmt.Sprintf("app/%s run/%d", app, rel.RunID), Detail: fmt.Sprintf("at %d%% (%s) %s", rel.Weight, rel.State, req.Reason)}
		if err := s.store.AddCommand(r.Context(), c, audit); err != nil {
			s.internal(w, "queueing the command", err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"app": app, "run": rel.RunID, "command": cmd,
			"state": rel.State, "weight": rel.Weight, "result": string(cmd) + " sent to the release"})
	}
}

// releaseView is a release's checkpoint as the API shows it.
type releaseView struct {
	Run     int64         `json:"run"`
	App     string        `json:"app"`
	State   release.State `json:"state"`
	Step    int           `json:"step"`
	Weight  int           `json:"weight"`
	Reason  string        `json:"reason"`
	Updated time.Time     `json:"updated"`
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, who *Token) {
	rels, err := s.store.ListReleases(r.Context(), r.URL.Query().Get("app"), r.URL.Query().Get("inFlight") == "true")
	if err != nil {
		s.internal(w, "reading releases", err)
		return
	}
	out := []releaseView{}
	for _, rel := range rels {
		if who.mayAccess(rel.App) {
			out = append(out, releaseView{Run: rel.RunID, App: rel.App, State: rel.State, Step: rel.Step + 1,
				Weight: rel.Weight, Reason: rel.Reason, Updated: rel.UpdatedAt})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// RollbackView is a rollback record as the API shows it; Measurements are
// all of the release's measurements (the deciding ones are in Evidence).
type RollbackView struct {
	ID             int64                    `json:"id"`
	Run            int64                    `json:"run"`
	App            string                   `json:"app"`
	SourceSHA      string                   `json:"sourceSha"`
	Digest         string                   `json:"digest"`
	Trigger        string                   `json:"trigger"`
	Actor          string                   `json:"actor,omitempty"`
	Reason         string                   `json:"reason"`
	Weight         int                      `json:"weight"`
	ReleaseCommit  string                   `json:"releaseCommit"`
	RollbackCommit string                   `json:"rollbackCommit"`
	DetectedAt     time.Time                `json:"detectedAt"`
	RestoredAt     time.Time                `json:"restoredAt"`
	Evidence       release.RollbackEvidence `json:"evidence"`
	Measurements   []store.Measurement      `json:"measurements,omitempty"`
}

// rollbackView is the API's view of a stored rollback; evidence the
// engine cannot read (a record damaged by hand) shows as none.
func rollbackView(rb *store.Rollback) RollbackView {
	var ev release.RollbackEvidence
	if err := json.Unmarshal(rb.Evidence, &ev); err != nil {
		ev = release.RollbackEvidence{}
	}
	return RollbackView{ID: rb.ID, Run: rb.RunID, App: rb.App, SourceSHA: rb.SourceSHA, Digest: rb.Digest, Trigger: rb.Trigger,
		Actor: rb.Actor, Reason: rb.Reason, Weight: rb.Weight, ReleaseCommit: rb.ReleaseCommit, RollbackCommit: rb.RollbackCommit,
		DetectedAt: rb.DetectedAt, RestoredAt: rb.RestoredAt, Evidence: ev}
}

func (s *Server) listRollbacks(w http.ResponseWriter, r *http.Request, who *Token) {
	f := store.RollbackFilter{App: r.URL.Query().Get("app")}
	if f.App != "" && !appName.MatchString(f.App) {
		writeError(w, http.StatusBadRequest, "%q is not an app name", f.App)
		return
	}
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "since %q is not a positive duration (e.g. 24h)", v)
			return
		}
		f.Since = time.Now().Add(-d)
	}
	limit, err := queryInt(r, "limit", 50, 500)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	f.Limit = int(limit)
	rbs, err := s.store.ListRollbacks(r.Context(), f)
	if err != nil {
		s.internal(w, "reading rollbacks", err)
		return
	}
	out := []RollbackView{}
	for _, rb := range rbs {
		if who.mayAccess(rb.App) {
			out = append(out, rollbackView(rb))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRollback(w http.ResponseWriter, r *http.Request, who *Token) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "rollback id %q is not a positive number", r.PathValue("id"))
		return
	}
	rb, err := s.store.GetRollback(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.mayAccess(rb.App)) {
		writeError(w, http.StatusNotFound, "rollback %d not found", id)
		return
	}
	if err != nil {
		s.internal(w, "reading the rollback", err)
		return
	}
	v := rollbackView(rb)
	if v.Measurements, err = s.store.ListMeasurements(r.Context(), rb.RunID); err != nil {
		s.internal(w, "reading measurements", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
