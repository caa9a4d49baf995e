package server

import (
	"context"
	"strconv"
	"strings"

	"github.com/slipwayci/slipway/runner/store"
)

// A token limited to some apps sees only what concerns them: deliveries to
// repositories bound to its apps (or that started runs of them), and audit
// entries whose target is one of its apps or their runs.

// deliveryInScope reports whether who may see delivery d.
func (s *Server) deliveryInScope(ctx context.Context, who *Token, d *store.Delivery) bool {
	if len(who.Apps) == 0 {
		return true
	}
	for _, repo := range s.repos {
		if repo.Config.Name != d.Repo {
			continue
		}
		if len(repo.Config.Apps) == 0 && who.mayAccess(repo.Config.Name) {
			return true
		}
		for _, a := range repo.Config.Apps {
			if who.mayAccess(a.Name) {
				return true
			}
		}
	}
	for _, m := range d.Matches {
		if m.RunID != 0 && s.runInScope(ctx, who, m.RunID) {
			return true
		}
	}
	return false
}

// auditInScope reports whether who may see entry e: its target names an
// app in scope (app/NAME) or a run of one (run/ID).
func (s *Server) auditInScope(ctx context.Context, who *Token, e store.AuditEntry) bool {
	if len(who.Apps) == 0 {
		return true
	}
	for _, f := range strings.Fields(e.Target) {
		kind, name, _ := strings.Cut(f, "/")
		switch kind {
		case "app":
			if who.mayAccess(name) {
				return true
			}
		case "run":
			if id, err := strconv.ParseInt(name, 10, 64); err == nil && s.runInScope(ctx, who, id) {
				return true
			}
		}
	}
	return false
}

func (s *Server) runInScope(ctx context.Context, who *Token, id int64) bool {
	run, err := s.store.GetRun(ctx, id)
	return err == nil && who.mayAccess(run.App)
}
