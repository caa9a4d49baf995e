package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
)

// commandRequest is the optional body of a release command.
type commandRequest struct {
	Full   bool   `json:"full"`   // promote: skip the remaining steps (never a failing analysis)
	Reason string `json:"reason"` // abort: why, for the record
}

// inFlight returns the release of app in flight, answering the request
// itself when there is none (or the caller may not see the app).
func (a *API) inFlight(w http.ResponseWriter, r *http.Request, who *auth.Token, app string) *store.Release {
	if !release.ValidApp(app) {
		view.Error(w, http.StatusBadRequest, "%q is not an app name", app)
		return nil
	}
	if !who.MayAccess(app) {
		view.Error(w, http.StatusNotFound, "app %s not found", app)
		return nil
	}
	rels, err := a.store.ListReleases(r.Context(), app, true)
	if err != nil {
		a.internal(w, "reading releases", err)
		return nil
	}
	if len(rels) == 0 {
		view.Error(w, http.StatusConflict, "no release of %s is in flight", app)
		return nil
	}
	return rels[0]
}

func (a *API) releaseCommand(name release.Command) Handler {
	return func(w http.ResponseWriter, r *http.Request, who *auth.Token) {
		var req commandRequest
		if err := decodeBody(w, r, &req); err != nil {
			view.Error(w, http.StatusBadRequest, "%v", err)
			return
		}
		if len(req.Reason) > 1000 {
			view.Error(w, http.StatusBadRequest, "reason is longer than 1000 characters")
			return
		}
		if req.Full && name != release.Promote {
			view.Error(w, http.StatusBadRequest, "full goes with promote only")
			return
		}
		app := r.PathValue("app")
		rel := a.inFlight(w, r, who, app)
		if rel == nil {
			return
		}
		cmd := name
		if req.Full {
			cmd = release.PromoteFull
		}
		if why := release.Refusal(rel.State, cmd); why != "" {
			view.Error(w, http.StatusConflict, "%s not sent to the release of %s (run %d): %s", cmd, app, rel.RunID, why)
			return
		}
		detail, _ := json.Marshal(release.CommandDetail{Reason: req.Reason})
		c := &store.Command{RunID: rel.RunID, Name: cmd, Actor: who.Name, Detail: detail, CreatedAt: time.Now()}
		audit := store.AuditEntry{Time: c.CreatedAt, Actor: who.Name, Action: "release." + string(cmd),
			Target: fmt.Sprintf("app/%s run/%d", app, rel.RunID), Detail: fmt.Sprintf("at %d%% (%s) %s", rel.Weight, rel.State, req.Reason)}
		if err := a.store.AddCommand(r.Context(), c, audit); err != nil {
			a.internal(w, "queueing the command", err)
			return
		}
		view.JSON(w, http.StatusAccepted, map[string]any{"app": app, "run": rel.RunID, "command": cmd,
			"state": rel.State, "weight": rel.Weight, "result": string(cmd) + " sent to the release"})
	}
}

func (a *API) listReleases(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	rels, err := a.store.ListReleases(r.Context(), r.URL.Query().Get("app"), r.URL.Query().Get("inFlight") == "true")
	if err != nil {
		a.internal(w, "reading releases", err)
		return
	}
	view.JSON(w, http.StatusOK, visible(who, rels, func(r *store.Release) string { return r.App }, view.Release))
}

func (a *API) listRollbacks(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	f := store.RollbackFilter{App: r.URL.Query().Get("app")}
	if f.App != "" && !release.ValidApp(f.App) {
		view.Error(w, http.StatusBadRequest, "%q is not an app name", f.App)
		return
	}
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			view.Error(w, http.StatusBadRequest, "since %q is not a positive duration (e.g. 24h)", v)
			return
		}
		f.Since = time.Now().Add(-d)
	}
	limit, err := view.QueryInt(r, "limit", 50, 500)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	f.Limit = int(limit)
	rbs, err := a.store.ListRollbacks(r.Context(), f)
	if err != nil {
		a.internal(w, "reading rollbacks", err)
		return
	}
	view.JSON(w, http.StatusOK, visible(who, rbs, func(r *store.Rollback) string { return r.App }, view.Rollback))
}

func (a *API) getRollback(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		view.Error(w, http.StatusBadRequest, "rollback id %q is not a positive number", r.PathValue("id"))
		return
	}
	rb, err := a.store.GetRollback(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.MayAccess(rb.App)) {
		view.Error(w, http.StatusNotFound, "rollback %d not found", id)
		return
	}
	if err != nil {
		a.internal(w, "reading the rollback", err)
		return
	}
	v := view.Rollback(rb)
	if v.Measurements, err = a.store.ListMeasurements(r.Context(), rb.RunID); err != nil {
		a.internal(w, "reading measurements", err)
		return
	}
	view.JSON(w, http.StatusOK, v)
}
