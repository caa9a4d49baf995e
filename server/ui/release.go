package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/web"
)

// The release page (one canary, by its run), its command confirmations,
// and the rollback page.

type releaseBody struct {
	Run                  int64
	App, Reason, Image   string
	State                release.State
	Digest, StepText     string
	Weight               int
	LiveWeight           *liveWeight
	StepStarted, Updated time.Time
	InStep               string // time in the current step; "" once done
	Steps                []stepRow
	Actions              []action
	Metrics              []metricView
	Rollback             int64
}

type liveWeight struct {
	Weight int
	At     time.Time
}

type stepRow struct {
	Text          string
	Current, Done bool
}

// metricView is one metric's chart and the same data as a table.
type metricView struct {
	ID, Name, Caption, Query string
	DryRun                   bool // measured in dry run: never deciding
	Chart                    any
	Rows                     []measurementRow
}

type measurementRow struct {
	At                                        time.Time
	Step, Weight                              int
	Value, Limits, Requests, Outcome, Message string
	Decisive                                  bool
}

// release loads run {param}'s release, in the caller's scope.
func (u *UI) release(r *http.Request, who *auth.Token, param string) (*store.Run, *store.Release, error) {
	run, err := u.runInScopeFor(r, who, param)
	if err != nil {
		return nil, nil, err
	}
	rels, err := u.store.ListReleases(r.Context(), run.App, false)
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(rels, func(rel *store.Release) bool { return rel.RunID == run.ID })
	if i < 0 {
		return nil, nil, notFound(fmt.Sprintf("run %d has no release (yet)", run.ID))
	}
	return run, rels[i], nil
}

func (u *UI) releasePage(r *http.Request, who *auth.Token) (web.Page, error) {
	run, rel, err := u.release(r, who, "run")
	if err != nil {
		return web.Page{}, err
	}
	b := u.releaseBody(who, rel)
	ms, err := u.store.ListMeasurements(r.Context(), run.ID)
	if err != nil {
		return web.Page{}, err
	}
	b.Metrics = metricViews(ms, nil)
	rbs, err := u.store.ListRollbacks(r.Context(), store.RollbackFilter{App: run.App, Limit: 500})
	if err != nil {
		return web.Page{}, err
	}
	for _, rb := range rbs {
		if rb.RunID == run.ID {
			b.Rollback = rb.ID
		}
	}
	live := ""
	if !rel.State.Done() {
		live = fmt.Sprintf("/ui/events?release=%d", run.ID)
	}
	return web.Page{Title: "Release of " + run.App, Nav: "release", Live: live, Body: b}, nil
}

func (u *UI) releaseBody(who *auth.Token, rel *store.Release) releaseBody {
	var p release.Progress
	json.Unmarshal(rel.Data, &p) // a checkpoint without progress shows without it
	b := releaseBody{Run: rel.RunID, App: rel.App, State: rel.State, Reason: rel.Reason, Image: p.Image, Digest: p.Digest,
		Weight: rel.Weight, StepStarted: p.StepStartedAt, Updated: rel.UpdatedAt}
	if p.LiveWeight != nil {
		b.LiveWeight = &liveWeight{*p.LiveWeight, p.LiveAt}
	}
	done := rel.State.Done()
	if !done && !p.StepStartedAt.IsZero() {
		b.InStep = web.Duration(time.Since(p.StepStartedAt))
	}
	for i, st := range p.Steps {
		text := fmt.Sprintf("%d %% for %s", st.Weight, st.Interval)
		if st.Pause != "" {
			text = "pause " + st.Pause
		}
		b.Steps = append(b.Steps, stepRow{Text: text, Current: !done && i == rel.Step, Done: done && rel.State == release.Promoted || i < rel.Step})
	}
	b.StepText = fmt.Sprintf("step %d", rel.Step+1)
	if len(p.Steps) > 0 {
		b.StepText = fmt.Sprintf("step %d of %d", rel.Step+1, len(p.Steps))
	}
	for _, c := range release.Commands {
		a := action{Name: string(c), Label: commandLabels[c], ConfirmURL: fmt.Sprintf("/releases/%d/%s", rel.RunID, c), Reason: roleReason(who, auth.RoleReleaseManager)}
		if a.Reason == "" {
			a.Reason = release.Refusal(rel.State, c)
		}
		b.Actions = append(b.Actions, a)
	}
	return b
}

// commandLabels are the release page's buttons.
var commandLabels = map[release.Command]string{release.Promote: "Promote", release.PromoteFull: "Promote full",
	release.Pause: "Pause", release.Resume: "Resume", release.Abort: "Abort"}

// metricViews groups measurements by metric, in the order they first
// appear; decisive names the measurement IDs a rollback was decided on.
func metricViews(ms []store.Measurement, decisive map[int64]bool) []metricView {
	var out []metricView
	index := map[string]int{}
	for _, m := range ms {
		i, ok := index[m.Metric]
		if !ok {
			i = len(out)
			index[m.Metric] = i
			out = append(out, metricView{ID: fmt.Sprintf("%d", i), Name: m.Metric})
		}
		v := &out[i]
		v.Query = m.Query
		v.DryRun = v.DryRun || strings.HasPrefix(m.Message, release.DryRunNote)
		v.Rows = append(v.Rows, measurementRow{At: m.At, Step: m.Step + 1, Weight: m.Weight, Value: web.Number(m.Value),
			Limits: limits(m.Min, m.Max), Requests: requests(m.Requests), Outcome: m.Outcome, Message: m.Message, Decisive: decisive[m.ID]})
	}
	for i := range out {
		var c web.Chart
		c.Title = out[i].Name + " over the release"
		for _, m := range ms {
			if m.Metric != out[i].Name {
				continue
			}
			c.Points = append(c.Points, web.Point{At: m.At, Value: m.Value, Outcome: m.Outcome, Decisive: decisive[m.ID]})
			c.Min, c.Max = m.Min, m.Max
		}
		out[i].Chart = c.SVG()
		out[i].Caption = fmt.Sprintf("%s: %d measurements; limits %s. Crosses are failures, squares inconclusive, triangles errors.", out[i].Name, len(c.Points), limits(c.Min, c.Max))
		if out[i].DryRun {
			out[i].Caption += " In dry run: its measurements never roll back, pause or hold the release."
		}
	}
	return out
}

func limits(lo, hi *float64) string {
	var parts []string
	if lo != nil {
		parts = append(parts, "min "+web.Number(*lo))
	}
	if hi != nil {
		parts = append(parts, "max "+web.Number(*hi))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func requests(n float64) string {
	if n < 0 || math.IsNaN(n) {
		return "—"
	}
	return web.Number(n)
}

// latestRelease sends /apps/{app} to the app's newest release.
func (u *UI) latestRelease(r *http.Request, who *auth.Token) (web.Page, error) {
	app := r.PathValue("app")
	if !release.ValidApp(app) || !who.MayAccess(app) {
		return web.Page{}, notFound("app " + app + " not found")
	}
	rels, err := u.store.ListReleases(r.Context(), app, false)
	if err != nil {
		return web.Page{}, err
	}
	if len(rels) == 0 {
		return web.Page{}, notFound("app " + app + " has no release yet")
	}
	return web.Page{}, &redirect{fmt.Sprintf("/releases/%d", rels[0].RunID)}
}

// redirect is a page that is elsewhere.
type redirect struct{ to string }

func (r *redirect) Error() string { return "see " + r.to }
