package ui

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/server/web"
)

// The pages that list: home, rollbacks, deliveries, audit.

type homeBody struct {
	Waiting, InFlight []view.ReleaseView
	Counts            []statusCount
	Runs              []runRow
}

type statusCount struct {
	Status string
	N      int
}

// runRow is a run in a table.
type runRow struct {
	ID                                  int64
	Pipeline, App, Status, Trigger, SHA string
	Created                             time.Time
	Took                                string
}

func newRunRow(r *store.Run) runRow {
	return runRow{ID: r.ID, Pipeline: r.Pipeline, App: r.App, Status: string(r.Status), Trigger: triggerText(r.Trigger),
		SHA: r.Trigger.SHA, Created: r.CreatedAt, Took: took(r.StartedAt, r.FinishedAt)}
}

func triggerText(t store.Trigger) string {
	if t.Actor != "" {
		return t.Event + " by " + t.Actor
	}
	return t.Event
}

// took is how long something ran, "running for …" while it runs.
func took(start, end time.Time) string {
	switch {
	case start.IsZero():
		return "—"
	case end.IsZero():
		return "running for " + web.Duration(time.Since(start))
	}
	return web.Duration(end.Sub(start))
}

func (u *UI) homePage(r *http.Request, who *auth.Token) (web.Page, error) {
	ctx := r.Context()
	rels, err := u.store.ListReleases(ctx, "", true)
	if err != nil {
		return web.Page{}, err
	}
	var b homeBody
	for _, rel := range rels {
		if !who.MayAccess(rel.App) {
			continue
		}
		v := view.Release(rel)
		if rel.State == release.Paused {
			b.Waiting = append(b.Waiting, v)
		} else {
			b.InFlight = append(b.InFlight, v)
		}
	}
	counts, err := u.store.CountRuns(ctx, who.Apps)
	if err != nil {
		return web.Page{}, err
	}
	for _, st := range []store.RunStatus{store.RunRunning, store.RunQueued, store.RunFailed, store.RunSucceeded, store.RunCancelled} {
		b.Counts = append(b.Counts, statusCount{string(st), counts[st]})
	}
	runs, err := u.store.ListRuns(ctx, store.RunFilter{Limit: 30})
	if err != nil {
		return web.Page{}, err
	}
	for _, run := range runs {
		if who.MayAccess(run.App) {
			b.Runs = append(b.Runs, newRunRow(run))
		}
	}
	return web.Page{Title: "Home", Nav: "home", Live: "/ui/events", Body: b}, nil
}

type rollbackRow struct {
	ID                          int64
	App, Trigger, Actor, Failed string
	When                        time.Time
	Weight                      int
	Restore                     string
}

type rollbacksBody struct{ Rows []rollbackRow }

func (u *UI) rollbacksPage(r *http.Request, who *auth.Token) (web.Page, error) {
	rbs, err := u.store.ListRollbacks(r.Context(), store.RollbackFilter{Limit: 200})
	if err != nil {
		return web.Page{}, err
	}
	var b rollbacksBody
	for _, rb := range rbs {
		if !who.MayAccess(rb.App) {
			continue
		}
		v := view.Rollback(rb)
		failed := v.Reason
		if ms := v.Evidence.Detail.Measurements; len(ms) > 0 {
			last := ms[len(ms)-1]
			failed = last.Metric + " " + view.OrOutcome(last.Message, last.Outcome)
		}
		b.Rows = append(b.Rows, rollbackRow{ID: v.ID, App: v.App, Trigger: v.Trigger, Actor: v.Actor, Failed: failed,
			When: v.DetectedAt, Weight: v.Weight, Restore: web.Duration(v.RestoredAt.Sub(v.DetectedAt))})
	}
	return web.Page{Title: "Rollbacks", Nav: "rollbacks", Live: "/ui/events", Body: b}, nil
}

type deliveriesBody struct{ Rows []view.DeliveryView }

func (u *UI) deliveriesPage(r *http.Request, who *auth.Token) (web.Page, error) {
	list, err := u.store.ListDeliveries(r.Context(), store.DeliveryFilter{Limit: 200})
	if err != nil {
		return web.Page{}, err
	}
	var b deliveriesBody
	for _, d := range list {
		if u.api.DeliveryInScope(r.Context(), who, d) {
			b.Rows = append(b.Rows, view.Delivery(d))
		}
	}
	return web.Page{Title: "Deliveries", Nav: "deliveries", Body: b}, nil
}

type auditBody struct {
	Rows  []store.AuditEntry
	Older int64
}

func (u *UI) auditPage(r *http.Request, who *auth.Token) (web.Page, error) {
	before, err := view.QueryInt(r, "before", 0, 1<<62)
	if err != nil {
		return web.Page{}, &uiError{http.StatusBadRequest, err.Error()}
	}
	const pageSize = 100
	list, err := u.store.ListAudit(r.Context(), before, pageSize)
	if err != nil {
		return web.Page{}, err
	}
	var b auditBody
	for _, e := range list {
		if u.api.AuditInScope(r.Context(), who, e) {
			b.Rows = append(b.Rows, e)
		}
	}
	if len(list) == pageSize {
		b.Older = list[len(list)-1].ID
	}
	return web.Page{Title: "Audit log", Nav: "audit", Body: b}, nil
}

// pathID reads a positive ID from the URL path.
func pathID(r *http.Request, name, what string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, &uiError{http.StatusBadRequest, fmt.Sprintf("%s %q is not a positive number", what, r.PathValue(name))}
	}
	return id, nil
}

// runInScopeFor loads a run the caller may see, or a not-found error.
func (u *UI) runInScopeFor(r *http.Request, who *auth.Token, param string) (*store.Run, error) {
	id, err := pathID(r, param, "run")
	if err != nil {
		return nil, err
	}
	run, err := u.store.GetRun(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.MayAccess(run.App)) {
		return nil, notFound(fmt.Sprintf("run %d not found", id))
	}
	return run, err
}

// commitURL links a commit on its forge, when the repository is watched.
func (u *UI) commitURL(t store.Trigger) string {
	if t.SHA == "" || t.Repo == "" {
		return ""
	}
	for _, repo := range u.repos {
		c := repo.Config
		if c.Name != t.Repo && c.URL != t.Repo {
			continue
		}
		base := strings.TrimSuffix(c.URL, ".git")
		if !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
			return ""
		}
		if c.Forge == "gitlab" {
			return base + "/-/commit/" + t.SHA
		}
		return base + "/commit/" + t.SHA
	}
	return ""
}

// sortedOutputs is a stage's outputs in name order.
func sortedOutputs(m map[string]string) []nameValue {
	var out []nameValue
	for k, v := range m {
		out = append(out, nameValue{k, v})
	}
	slices.SortFunc(out, func(a, b nameValue) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

type nameValue struct{ Name, Value string }
