// Package api is the engine's JSON API under /api/v1: runs and their logs
// (pages, or Server-Sent Events), manual runs and cancels, releases and
// the commands people give them, rollbacks, deliveries, artifacts and the
// audit log — each call admitted by the auth Guard by role and app scope,
// and every action audited before it is taken. It also serves the live
// stream each UI tab follows (/ui/events).
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/triggers"
)

// Engine is what the API needs of the runner.
type Engine interface {
	Submit(ctx context.Context, req runner.Request) (*store.Run, bool, error)
	Cancel(ctx context.Context, id int64, reason string) error
	Follow(ctx context.Context, id, afterSeq int64, fn func(store.LogLine) error) error
}

// Store is what the API reads and writes, declared by the methods it
// calls.
type Store interface {
	RunReader
	ReleaseDesk
	// ListDeliveries lists webhook deliveries for GET /api/v1/deliveries.
	ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error)
	// ListAudit reads the audit log, newest first, for admins.
	ListAudit(ctx context.Context, beforeID int64, limit int) ([]store.AuditEntry, error)
}

// RunReader reads runs with their stages, attempts, timeline and logs.
type RunReader interface {
	GetRun(ctx context.Context, id int64) (*store.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
	ListStages(ctx context.Context, runID int64) ([]*store.Stage, error)
	ListAttempts(ctx context.Context, runID int64) ([]*store.Attempt, error)
	ListEvents(ctx context.Context, runID int64) ([]store.Event, error)
	ReadLogs(ctx context.Context, runID, afterSeq int64, limit int) ([]store.LogLine, error)
	ReadLogsBefore(ctx context.Context, runID int64, stage string, beforeSeq int64, limit int) ([]store.LogLine, error)
	CountRuns(ctx context.Context, apps []string) (map[store.RunStatus]int, error)
	ListArtifacts(ctx context.Context, runID int64) ([]store.Artifact, error)
	GetArtifact(ctx context.Context, runID int64, index int, name string) (*store.Artifact, error)
}

// ReleaseDesk reads releases and rollbacks, and queues commands to a
// release (promote, pause, abort…) together with their audit entry.
type ReleaseDesk interface {
	ListReleases(ctx context.Context, app string, inFlight bool) ([]*store.Release, error)
	ListMeasurements(ctx context.Context, runID int64) ([]store.Measurement, error)
	GetRollback(ctx context.Context, id int64) (*store.Rollback, error)
	ListRollbacks(ctx context.Context, f store.RollbackFilter) ([]*store.Rollback, error)
	AddCommand(ctx context.Context, c *store.Command, audit ...store.AuditEntry) error
}

// API serves /api/v1.
type API struct {
	store  Store
	engine Engine
	repos  []*triggers.Repo
	guard  *auth.Guard
	log    *slog.Logger

	heartbeatEvery atomic.Int64 // nanoseconds; 0: HeartbeatEvery (tests shorten it)

	mu        sync.Mutex
	followers map[string]int // live log streams open, by token name
}

// New is the API over st and engine; repos are the watched repositories
// (for manual runs and the scope of deliveries).
func New(st Store, engine Engine, repos []*triggers.Repo, guard *auth.Guard, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{store: st, engine: engine, repos: repos, guard: guard, log: log}
}

// apiCommands are the commands people give a release in flight:
// POST /api/v1/apps/{app}/{command} (promote-full is promote with full: true).
var apiCommands = []release.Command{release.Promote, release.Abort, release.Pause, release.Resume}

// Route adds the API's endpoints to mux.
func (a *API) Route(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/runs", a.Auth(auth.RoleViewer, a.listRuns))
	mux.Handle("GET /api/v1/runs/{id}", a.Auth(auth.RoleViewer, a.getRun))
	mux.Handle("GET /api/v1/runs/{id}/logs", a.Auth(auth.RoleViewer, a.runLogs))
	mux.Handle("POST /api/v1/runs/{id}/cancel", a.Auth(auth.RoleReleaseManager, a.cancelRun))
	mux.Handle("POST /api/v1/pipelines/{name}/runs", a.Auth(auth.RoleReleaseManager, a.triggerRun))
	mux.Handle("GET /api/v1/deliveries", a.Auth(auth.RoleViewer, a.listDeliveries))
	mux.Handle("GET /api/v1/audit", a.Auth(auth.RoleAdmin, a.listAudit))
	mux.Handle("GET /api/v1/releases", a.Auth(auth.RoleViewer, a.listReleases))
	for _, c := range apiCommands {
		mux.Handle("POST /api/v1/apps/{app}/"+string(c), a.Auth(auth.RoleReleaseManager, a.releaseCommand(c)))
	}
	mux.Handle("GET /api/v1/rollbacks", a.Auth(auth.RoleViewer, a.listRollbacks))
	mux.Handle("GET /api/v1/rollbacks/{id}", a.Auth(auth.RoleViewer, a.getRollback))
	mux.Handle("GET /api/v1/runs/{id}/artifacts/{stage}/{name}", a.Auth(auth.RoleViewer, a.getArtifact))
	mux.Handle("GET /ui/events", a.Auth(auth.RoleViewer, a.events))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		view.Error(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}

// Handler is an API handler that knows who calls it.
type Handler func(w http.ResponseWriter, r *http.Request, who *auth.Token)

// Auth admits requests whose token has at least role (the Guard says
// who, and audits refusals) and answers the others with the reason.
func (a *API) Auth(role auth.Role, h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, no := a.guard.Admit(r, role)
		if no != nil {
			if no.Code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
			}
			view.Error(w, no.Code, "%s", no.Message)
			return
		}
		h(w, r, who)
	})
}

// CancelRun is POST /api/v1/runs/{id}/cancel, for a form of the UI.
func (a *API) CancelRun() Handler { return a.cancelRun }

// Command is POST /api/v1/apps/{app}/{command}, for a form of the UI.
func (a *API) Command(c release.Command) Handler { return a.releaseCommand(c) }

// SetHeartbeat makes idle streams send a comment every d (tests shorten
// HeartbeatEvery).
func (a *API) SetHeartbeat(d time.Duration) { a.heartbeatEvery.Store(int64(d)) }

// RunDetail is run with its stages, attempts and timeline.
func (a *API) RunDetail(ctx context.Context, run *store.Run) (view.RunView, error) {
	stages, err := a.store.ListStages(ctx, run.ID)
	if err != nil {
		return view.Run(run), err
	}
	attempts, err := a.store.ListAttempts(ctx, run.ID)
	if err != nil {
		return view.Run(run), err
	}
	events, err := a.store.ListEvents(ctx, run.ID)
	if err != nil {
		return view.Run(run), err
	}
	return view.Detail(run, stages, attempts, events), nil
}

// maxAPIBody bounds the JSON bodies of API calls.
const maxAPIBody = 64 << 10

// auditFirst appends to the audit log before an action: when the entry
// cannot be written the request is answered 500 and the action not taken,
// so no action goes unaudited.
func (a *API) auditFirst(w http.ResponseWriter, r *http.Request, who *auth.Token, action, target, detail string) bool {
	if err := a.guard.AuditFirst(r.Context(), who, action, target, detail); err != nil {
		a.internal(w, "writing the audit log (nothing was done)", err)
		return false
	}
	return true
}

// runFor loads run {id} if the caller's scope covers its app; it answers
// the request itself when not.
func (a *API) runFor(w http.ResponseWriter, r *http.Request, who *auth.Token) *store.Run {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		view.Error(w, http.StatusBadRequest, "run id %q is not a positive number", r.PathValue("id"))
		return nil
	}
	run, err := a.store.GetRun(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.MayAccess(run.App)) {
		view.Error(w, http.StatusNotFound, "run %d not found", id)
		return nil
	}
	if err != nil {
		a.internal(w, "reading run", err)
		return nil
	}
	return run
}

func (a *API) internal(w http.ResponseWriter, doing string, err error) {
	a.log.Error(doing, "err", err)
	view.Error(w, http.StatusInternalServerError, "%s failed; see the engine log", doing)
}
