package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/web"
	"github.com/slipwayci/slipway/triggers"
)

// Engine is what the server needs of the runner.
type Engine interface {
	Submit(ctx context.Context, req runner.Request) (*store.Run, bool, error)
	Cancel(ctx context.Context, id int64, reason string) error
	Follow(ctx context.Context, id, afterSeq int64, fn func(store.LogLine) error) error
}

// Resolved is what the server runs on, made ready from the engine config
// (package engineconfig): repositories with their secrets read and
// pipeline files loaded, token hashes, the Alertmanager receiver's
// credentials.
type Resolved struct {
	Repos        []*triggers.Repo
	Tokens       []Token
	Alertmanager *AlertmanagerAuth // nil: the receiver is off
	// URL is where people reach the engine (the engine config's url). An
	// https:// URL makes its cookies Secure even when a proxy in front of
	// it ends TLS and the engine itself is asked in plain HTTP.
	URL string
}

// Store is what the server reads and writes, declared here by the methods
// it calls (as the runner declares its own, runner.Store).
type Store interface {
	runReader
	releaseDesk
	auditLog
	// ListDeliveries lists webhook deliveries for GET /api/v1/deliveries.
	ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error)
}

// runReader reads runs with their stages, attempts, timeline and logs.
type runReader interface {
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

// releaseDesk reads releases and rollbacks, and queues commands to a
// release (promote, pause, abort…) together with their audit entry.
type releaseDesk interface {
	ListReleases(ctx context.Context, app string, inFlight bool) ([]*store.Release, error)
	ListMeasurements(ctx context.Context, runID int64) ([]store.Measurement, error)
	GetRollback(ctx context.Context, id int64) (*store.Rollback, error)
	ListRollbacks(ctx context.Context, f store.RollbackFilter) ([]*store.Rollback, error)
	AddCommand(ctx context.Context, c *store.Command, audit ...store.AuditEntry) error
}

// auditLog records who did what, and lists it for admins.
type auditLog interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, beforeID int64, limit int) ([]store.AuditEntry, error)
}

// Server is the engine's HTTP face: webhooks, the JSON API, /metrics.
type Server struct {
	store   Store
	engine  Engine
	intake  *triggers.Intake
	repos   []*triggers.Repo
	tokens  []Token
	alerts  *AlertmanagerAuth
	metrics *Metrics
	log     *slog.Logger

	secureCookies bool    // people reach the engine over https (Resolved.URL)
	denied        denials // refused calls, aggregated in the audit log

	pages          *web.Pages
	sessions       sessions
	heartbeatEvery atomic.Int64 // nanoseconds; 0: HeartbeatEvery (tests shorten it)

	mu        sync.Mutex
	followers map[string]int // live log streams open, by token name
}

// New wires the HTTP server. intake receives the webhooks; res gives the
// repositories (for manual runs) and the API tokens.
func New(st Store, engine Engine, intake *triggers.Intake, res *Resolved, m *Metrics, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := web.Load()
	if err != nil {
		panic(err) // the embedded templates are part of the binary: a test catches this
	}
	return &Server{store: st, engine: engine, intake: intake, repos: res.Repos, tokens: res.Tokens, alerts: res.Alertmanager,
		metrics: m, log: log, pages: pages, secureCookies: strings.HasPrefix(strings.ToLower(res.URL), "https://")}
}

// maxAPIBody bounds the JSON bodies of API calls.
const maxAPIBody = 64 << 10

// What a request but a stream may take: its body read within
// requestReadTimeout, its answer written within requestWriteTimeout, so
// that no connection is held by a client that stopped reading or sending.
const (
	requestReadTimeout  = 30 * time.Second
	requestWriteTimeout = time.Minute
)

// withDeadlines bounds each request in time (a webhook's body has its own
// pace, and a Server-Sent Events stream lifts both when it starts).
func withDeadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, now := http.NewResponseController(w), time.Now()
		_ = rc.SetReadDeadline(now.Add(requestReadTimeout))
		_ = rc.SetWriteDeadline(now.Add(requestWriteTimeout))
		h.ServeHTTP(w, r)
	})
}

// Handler routes every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for name := range triggers.Forges() {
		mux.Handle("/hooks/"+name, s.intake.Handler(name))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.Handle("GET /api/v1/runs", s.auth(RoleViewer, s.listRuns))
	mux.Handle("GET /api/v1/runs/{id}", s.auth(RoleViewer, s.getRun))
	mux.Handle("GET /api/v1/runs/{id}/logs", s.auth(RoleViewer, s.runLogs))
	mux.Handle("POST /api/v1/runs/{id}/cancel", s.auth(RoleReleaseManager, s.cancelRun))
	mux.Handle("POST /api/v1/pipelines/{name}/runs", s.auth(RoleReleaseManager, s.triggerRun))
	mux.Handle("GET /api/v1/deliveries", s.auth(RoleViewer, s.listDeliveries))
	mux.Handle("GET /api/v1/audit", s.auth(RoleAdmin, s.listAudit))
	mux.Handle("GET /api/v1/releases", s.auth(RoleViewer, s.listReleases))
	for _, c := range apiCommands {
		mux.Handle("POST /api/v1/apps/{app}/"+string(c), s.auth(RoleReleaseManager, s.releaseCommand(c)))
	}
	mux.Handle("GET /api/v1/rollbacks", s.auth(RoleViewer, s.listRollbacks))
	mux.Handle("GET /api/v1/rollbacks/{id}", s.auth(RoleViewer, s.getRollback))
	mux.Handle("GET /api/v1/runs/{id}/artifacts/{stage}/{name}", s.auth(RoleViewer, s.getArtifact))
	mux.HandleFunc("POST /hooks/alertmanager", s.alertmanager)
	s.routeUI(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
	return withDeadlines(mux)
}

// caller is who makes a request: the bearer token it carries or, with
// none, the token its session cookie names (then also the session).
func (s *Server) caller(r *http.Request) (*Token, *session) {
	if r.Header.Get("Authorization") != "" {
		return authenticate(s.tokens, r), nil
	}
	sess := s.sessions.get(r, time.Now())
	if sess == nil {
		return nil, nil
	}
	for i := range s.tokens {
		if s.tokens[i].Name == sess.token {
			return &s.tokens[i], sess
		}
	}
	return nil, nil
}

// handler is an API handler that knows who calls it.
type handler func(w http.ResponseWriter, r *http.Request, who *Token)

// auth admits requests whose token has at least role. Refusals of
// mutating calls are audited (aggregated: see denials).
func (s *Server) auth(role Role, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, sess := s.caller(r)
		if who == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
			writeError(w, http.StatusUnauthorized, "a valid API token is required")
			return
		}
		if who.Role < role {
			if r.Method != http.MethodGet {
				s.auditDenied(r.Context(), who, r.Method+" "+r.URL.Path, fmt.Sprintf("role %s, needs %s", who.Role, role))
			}
			writeError(w, http.StatusForbidden, "token %s has role %s; this needs %s", who.Name, who.Role, role)
			return
		}
		if sess != nil && r.Method != http.MethodGet && r.Method != http.MethodHead && !validCSRF(r.Header.Get("X-CSRF-Token"), sess.csrf) {
			s.auditDenied(r.Context(), who, r.Method+" "+r.URL.Path, "no valid CSRF token")
			writeError(w, http.StatusForbidden, "a request from a browser session must carry its CSRF token")
			return
		}
		h(w, r, who)
	})
}

// auditFirst appends to the audit log before an action: when the entry
// cannot be written the request is answered 500 and the action not taken,
// so no action goes unaudited.
func (s *Server) auditFirst(w http.ResponseWriter, r *http.Request, who *Token, action, target, detail string) bool {
	err := s.store.AppendAudit(r.Context(), store.AuditEntry{Time: time.Now(), Actor: who.Name, Action: action, Target: target, Detail: detail})
	if err != nil {
		s.internal(w, "writing the audit log (nothing was done)", err)
		return false
	}
	return true
}

// audit appends to the audit log; failing to do so is logged loudly.
func (s *Server) audit(ctx context.Context, who *Token, action, target, detail string) {
	err := s.store.AppendAudit(context.WithoutCancel(ctx), store.AuditEntry{Time: time.Now(), Actor: who.Name, Action: action, Target: target, Detail: detail})
	if err != nil {
		s.log.Error("writing audit log", "actor", who.Name, "action", action, "target", target, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// runFor loads run {id} if the caller's scope covers its app; it answers
// the request itself when not.
func (s *Server) runFor(w http.ResponseWriter, r *http.Request, who *Token) *store.Run {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "run id %q is not a positive number", r.PathValue("id"))
		return nil
	}
	run, err := s.store.GetRun(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.mayAccess(run.App)) {
		writeError(w, http.StatusNotFound, "run %d not found", id)
		return nil
	}
	if err != nil {
		s.internal(w, "reading run", err)
		return nil
	}
	return run
}

func (s *Server) internal(w http.ResponseWriter, doing string, err error) {
	s.log.Error(doing, "err", err)
	writeError(w, http.StatusInternalServerError, "%s failed; see the engine log", doing)
}
