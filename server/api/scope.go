package api

import (
	"context"
	"strconv"
	"strings"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
)

// A token limited to some apps sees only what concerns them: deliveries to
// repositories bound to its apps (or that started runs of them), and audit
// entries whose target is one of its apps or their runs.

// DeliveryInScope reports whether who may see delivery d.
func (a *API) DeliveryInScope(ctx context.Context, who *auth.Token, d *store.Delivery) bool {
	if len(who.Apps) == 0 {
		return true
	}
	for _, repo := range a.repos {
		if repo.Config.Name != d.Repo {
			continue
		}
		if len(repo.Config.Apps) == 0 && who.MayAccess(repo.Config.Name) {
			return true
		}
		for _, a := range repo.Config.Apps {
			if who.MayAccess(a.Name) {
				return true
			}
		}
	}
	for _, m := range d.Matches {
		if m.RunID != 0 && a.RunInScope(ctx, who, m.RunID) {
			return true
		}
	}
	return false
}

// AuditInScope reports whether who may see entry e: its target names an
// app in scope (app/NAME) or a run of one (run/ID).
func (a *API) AuditInScope(ctx context.Context, who *auth.Token, e store.AuditEntry) bool {
	if len(who.Apps) == 0 {
		return true
	}
	for _, f := range strings.Fields(e.Target) {
		kind, name, _ := strings.Cut(f, "/")
		switch kind {
		case "app":
			if who.MayAccess(name) {
				return true
			}
		case "run":
			if id, err := strconv.ParseInt(name, 10, 64); err == nil && a.RunInScope(ctx, who, id) {
				return true
			}
		}
	}
	return false
}

// RunInScope reports whether who may see run id.
func (a *API) RunInScope(ctx context.Context, who *auth.Token, id int64) bool {
	run, err := a.store.GetRun(ctx, id)
	return err == nil && who.MayAccess(run.App)
}

// visible is what of items who may see (by the app each belongs to), as
// the API shows it; never nil, so an empty list is [] in JSON.
func visible[T, V any](who *auth.Token, items []T, app func(T) string, show func(T) V) []V {
	out := []V{}
	for _, it := range items {
		if who.MayAccess(app(it)) {
			out = append(out, show(it))
		}
	}
	return out
}
