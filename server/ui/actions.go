package ui

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/api"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/server/web"
)

// confirmBody is a confirm page: what will happen, to what, and the form
// that does it (app.js shows the same form in a dialog).
type confirmBody struct {
	Heading, Text, Warning, Action, Label, Class, Back string
	AskReason, ReasonRequired, Full                    bool
}

func (confirmBody) Template() string { return "confirm" }

// commandConfirm is the confirm page of a release command.
func (u *UI) commandConfirm(command release.Command) pageFunc {
	return func(r *http.Request, who *auth.Token) (web.Page, error) {
		_, rel, err := u.release(r, who, "run")
		if err != nil {
			return web.Page{}, err
		}
		if why := roleReason(who, auth.RoleReleaseManager); why != "" {
			return web.Page{}, &uiError{http.StatusForbidden, why}
		}
		if why := release.Refusal(rel.State, command); why != "" {
			return web.Page{}, &uiError{http.StatusConflict, why}
		}
		b := u.releaseBody(who, rel)
		what := fmt.Sprintf("the release of %s (image %s), now at %d %% on the canary, %s", b.App, imageText(b.Image, b.Digest), b.Weight, b.StepText)
		c := confirmBody{Action: fmt.Sprintf("/releases/%d/%s", rel.RunID, command), Back: fmt.Sprintf("/releases/%d", rel.RunID), Class: "primary"}
		switch command {
		case release.Promote:
			c.Heading, c.Label = "Promote "+b.App+"?", "Promote"
			c.Text = "Move " + what + " to its next step."
			if rel.State == release.Paused {
				c.Warning = "The release waits at a gate (" + rel.Reason + "). Promoting passes it without the analysis that would otherwise decide."
			}
		case release.PromoteFull:
			c.Heading, c.Label, c.Full = "Promote "+b.App+" fully?", "Promote full", true
			c.Text = "Give the canary all traffic: " + what + "."
			c.Warning = "The remaining steps and their analysis are skipped."
		case release.Pause:
			c.Heading, c.Label, c.AskReason = "Pause "+b.App+"?", "Pause", true
			c.Text = "Hold " + what + " where it is until someone resumes, promotes or aborts it."
		case release.Resume:
			c.Heading, c.Label = "Resume "+b.App+"?", "Resume"
			c.Text = "Carry on with " + what + "."
		case release.Abort:
			c.Heading, c.Label, c.Class, c.AskReason, c.ReasonRequired = "Abort "+b.App+"?", "Abort and roll back", "danger", true, true
			c.Text = "Roll back " + what + ": all traffic and both workloads go back to the stable image, in git and in the route."
		}
		return web.Page{Title: c.Heading, Nav: "release", Body: c}, nil
	}
}

// cancelConfirm is the confirm page of cancelling a run.
func (u *UI) cancelConfirm(r *http.Request, who *auth.Token) (web.Page, error) {
	run, err := u.runInScopeFor(r, who, "id")
	if err != nil {
		return web.Page{}, err
	}
	if why := roleReason(who, auth.RoleReleaseManager); why != "" {
		return web.Page{}, &uiError{http.StatusForbidden, why}
	}
	c := confirmBody{Heading: fmt.Sprintf("Cancel run %d?", run.ID), Label: "Cancel the run", Class: "danger",
		Text:   fmt.Sprintf("Stop run %d of %s (%s). A canary in flight is rolled back.", run.ID, run.Pipeline, run.Status),
		Action: fmt.Sprintf("/runs/%d/cancel", run.ID), Back: fmt.Sprintf("/runs/%d", run.ID)}
	return web.Page{Title: c.Heading, Nav: "run", Body: c}, nil
}

// releaseForm is the API's release command for the release of run
// {run}, refused when that release is no longer the one in flight.
func (u *UI) releaseForm(command release.Command) api.Handler {
	name := command
	if command == release.PromoteFull {
		name = release.Promote // the form says full=true
	}
	send := u.api.Command(name)
	return func(w http.ResponseWriter, r *http.Request, who *auth.Token) {
		run, err := u.runInScopeFor(r, who, "run")
		if err != nil {
			view.Error(w, http.StatusNotFound, "%v", err)
			return
		}
		rels, err := u.store.ListReleases(r.Context(), run.App, true)
		if err != nil {
			u.log.Error("reading releases", "err", err)
			view.Error(w, http.StatusInternalServerError, "reading releases failed; see the engine log")
			return
		}
		if len(rels) == 0 || rels[0].RunID != run.ID {
			view.Error(w, http.StatusConflict, "the release of run %d is no longer in flight; nothing was sent", run.ID)
			return
		}
		r.SetPathValue("app", run.App)
		send(w, r, who)
	}
}

// rollbackBody is the rollback page.
type rollbackBody struct {
	view.RollbackView
	Summary, Explain, Restore string
	Timing                    []web.Phase
	TimingBar                 any
	Alert                     *alertTable
	Metrics                   []metricView
}

func (rollbackBody) Template() string { return "rollback" }

type alertTable struct {
	Name string
	Rows []struct{ Kind, Name, Value string }
}

func (u *UI) rollbackPage(r *http.Request, who *auth.Token) (web.Page, error) {
	id, err := pathID(r, "id", "rollback")
	if err != nil {
		return web.Page{}, err
	}
	rb, err := u.store.GetRollback(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.MayAccess(rb.App)) {
		return web.Page{}, notFound(fmt.Sprintf("rollback %d not found", id))
	}
	if err != nil {
		return web.Page{}, err
	}
	v := view.Rollback(rb)
	ms, err := u.store.ListMeasurements(r.Context(), rb.RunID)
	if err != nil {
		return web.Page{}, err
	}
	decisive := map[int64]bool{}
	for _, m := range v.Evidence.Detail.Measurements {
		decisive[m.ID] = true
	}
	b := rollbackBody{RollbackView: v, Summary: v.Summary(), Explain: v.Explain(), Restore: web.Duration(v.RestoredAt.Sub(v.DetectedAt)),
		Metrics: metricViews(ms, decisive), Timing: phases(v.Evidence.Timings)}
	if len(b.Timing) > 0 {
		b.TimingBar = web.TimingBar(b.Timing)
	}
	b.Alert = alertOf(v.Evidence.Detail.Alert)
	return web.Page{Title: fmt.Sprintf("Rollback %d", v.ID), Nav: "rollbacks", Body: b}, nil
}

// phases splits a rollback's time: deciding, committing and pushing,
// Argo CD syncing until the route flipped.
func phases(t release.RollbackTimings) []web.Phase {
	if t.DetectedAt.IsZero() || t.DecidedAt.IsZero() || t.PushedAt.IsZero() || t.RestoredAt.IsZero() {
		return nil
	}
	return []web.Phase{{Name: "decide", Took: t.DecidedAt.Sub(t.DetectedAt)}, {Name: "commit + push", Took: t.PushedAt.Sub(t.DecidedAt)},
		{Name: "sync until stable serves", Took: t.RestoredAt.Sub(t.PushedAt)}}
}

func alertOf(a release.Alert) *alertTable {
	if len(a.Labels) == 0 && len(a.Annotations) == 0 {
		return nil
	}
	t := &alertTable{Name: view.OrDash(a.Labels["alertname"])}
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		t.Rows = append(t.Rows, struct{ Kind, Name, Value string }{"label", k, a.Labels[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(a.Annotations)) {
		t.Rows = append(t.Rows, struct{ Kind, Name, Value string }{"annotation", k, a.Annotations[k]})
	}
	return t
}

// imageText names a release's image with its digest, once.
func imageText(image, digest string) string {
	switch {
	case image == "":
		return view.OrDash(digest)
	case digest == "" || strings.Contains(image, digest):
		return image
	}
	return image + "@" + digest
}
