package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/slipwayci/slipway/server/api"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/hooks"
	"github.com/slipwayci/slipway/server/ui"
	"github.com/slipwayci/slipway/triggers"
)

// Resolved is what the server runs on, made ready from the engine config
// (package engineconfig): repositories with their secrets read and
// pipeline files loaded, token hashes, the Alertmanager receiver's
// credentials.
type Resolved struct {
	Repos        []*triggers.Repo
	Tokens       []auth.Token
	Alertmanager *hooks.AlertmanagerAuth // nil: the receiver is off
	// URL is where people reach the engine (the engine config's url). An
	// https:// URL makes its cookies Secure even when a proxy in front of
	// it ends TLS and the engine itself is asked in plain HTTP.
	URL string
}

// Store is what the server's parts read and write: each declares its own.
type Store interface {
	api.Store
	ui.Store
	hooks.Store
	auth.AuditLog
}

// Server is the engine's HTTP face: the forges' webhooks, the JSON API,
// the UI, the Alertmanager receiver and /metrics, behind one Guard.
type Server struct {
	intake  *triggers.Intake
	metrics *Metrics
	guard   *auth.Guard
	api     *api.API
	ui      *ui.UI
	alerts  *hooks.Alertmanager
}

// New wires the HTTP server. intake receives the webhooks; res gives the
// repositories (for manual runs) and the API tokens.
func New(st Store, engine api.Engine, intake *triggers.Intake, res *Resolved, m *Metrics, log *slog.Logger) *Server {
	guard := auth.NewGuard(res.Tokens, st, res.URL, log)
	a := api.New(st, engine, res.Repos, guard, log)
	return &Server{intake: intake, metrics: m, guard: guard, api: a,
		ui: ui.New(st, a, guard, res.Repos, log), alerts: hooks.NewAlertmanager(st, res.Alertmanager, log)}
}

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
	mux.Handle("POST /hooks/alertmanager", s.alerts)
	s.api.Route(mux)
	s.ui.Route(mux)
	return withDeadlines(mux)
}

// API is the server's JSON API (tests reach its knobs).
func (s *Server) API() *api.API { return s.api }

// Guard is the server's Guard (tests start sessions with it).
func (s *Server) Guard() *auth.Guard { return s.guard }
