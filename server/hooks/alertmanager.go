// Package hooks receives what other systems send the engine, besides the
// forges' webhooks (package triggers): Alertmanager's alerts, each of
// which aborts the release of the app it names.
package hooks

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/view"
)

// AlertmanagerAuth is how Alertmanager authenticates to
// POST /hooks/alertmanager, and the label naming an alert's app.
type AlertmanagerAuth struct {
	Bearer             string
	Username, Password string
	AppLabel           string
}

// maxAlertBody bounds an Alertmanager delivery (a group holds at most a
// few hundred alerts).
const maxAlertBody = 1 << 20

// admits checks the request's credentials in constant time.
func (a *AlertmanagerAuth) admits(r *http.Request) bool {
	if a.Bearer == "" && (a.Username == "" || a.Password == "") {
		return false // never configured with empty credentials; refuse rather than admit anyone
	}
	if a.Bearer != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.Bearer)) == 1
	}
	user, pass, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(a.Username))&
		subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password)) == 1
}

// alertGroup is Alertmanager's webhook payload (version 4); only what
// Slipway reads.
type alertGroup struct {
	Version string  `json:"version"`
	Status  string  `json:"status"`
	Alerts  []alert `json:"alerts"`
}

type alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Store is what the receiver reads and writes: the releases in flight,
// when they began, and the abort it queues with its audit entry.
type Store interface {
	GetRun(ctx context.Context, id int64) (*store.Run, error)
	ListStages(ctx context.Context, runID int64) ([]*store.Stage, error)
	ListReleases(ctx context.Context, app string, inFlight bool) ([]*store.Release, error)
	AddCommand(ctx context.Context, c *store.Command, audit ...store.AuditEntry) error
}

// Alertmanager is the receiver of POST /hooks/alertmanager.
type Alertmanager struct {
	store  Store
	alerts *AlertmanagerAuth // nil: the receiver is off
	log    *slog.Logger
}

// NewAlertmanager is the receiver; with auth nil it answers 404.
func NewAlertmanager(st Store, auth *AlertmanagerAuth, log *slog.Logger) *Alertmanager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Alertmanager{store: st, alerts: auth, log: log}
}

// ServeHTTP receives Alertmanager's webhook: each firing alert whose
// app label names an app with a release in flight aborts that release,
// with the alert as the rollback's evidence. Resolved alerts, and alerts
// for apps with nothing in flight, are acknowledged and ignored.
func (s *Alertmanager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.alerts == nil {
		view.Error(w, http.StatusNotFound, "the Alertmanager receiver is not configured (alertmanager: in the engine config)")
		return
	}
	if !s.alerts.admits(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway-alertmanager"`)
		view.Error(w, http.StatusUnauthorized, "Alertmanager credentials are required")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAlertBody))
	if err != nil {
		view.Error(w, http.StatusRequestEntityTooLarge, "an Alertmanager delivery is at most %d bytes", maxAlertBody)
		return
	}
	var g alertGroup
	if err := json.Unmarshal(body, &g); err != nil {
		view.Error(w, http.StatusBadRequest, "malformed Alertmanager payload: %v", err)
		return
	}
	if g.Version != "4" {
		view.Error(w, http.StatusBadRequest, "Alertmanager webhook payload version %q; Slipway reads version 4", g.Version)
		return
	}
	aborted, ignored := []map[string]any{}, 0
	for _, a := range g.Alerts {
		run, err := s.abortFor(r, a)
		if err != nil {
			s.log.Error("aborting a release for an alert", "err", err)
			view.Error(w, http.StatusInternalServerError, "aborting a release for an alert failed; see the engine log")
			return
		}
		if run == 0 {
			ignored++
			continue
		}
		aborted = append(aborted, map[string]any{"app": a.Labels[s.alerts.AppLabel], "run": run, "alert": a.Labels["alertname"]})
	}
	view.JSON(w, http.StatusOK, map[string]any{"aborted": aborted, "ignored": ignored})
}

// abortFor queues an abort of the release the alert names, if it fires and
// a release of its app is in flight; it returns that release's run.
func (s *Alertmanager) abortFor(r *http.Request, a alert) (int64, error) {
	app := a.Labels[s.alerts.AppLabel]
	if a.Status != "firing" || app == "" || !release.ValidApp(app) {
		return 0, nil
	}
	rels, err := s.store.ListReleases(r.Context(), app, true)
	if err != nil || len(rels) == 0 {
		return 0, err
	}
	name := a.Labels["alertname"]
	rel := rels[0]
	began, err := s.releaseBegan(r.Context(), rel.RunID)
	if err != nil {
		return 0, err
	}
	if !a.StartsAt.After(began) {
		// An alert that was already firing says nothing about this release.
		s.log.Info("alert ignored: it began before the release", "alert", name, "app", app, "run", rel.RunID,
			"alertStartsAt", a.StartsAt.Format(time.RFC3339), "releaseBegan", began.Format(time.RFC3339))
		return 0, nil
	}
	detail, err := json.Marshal(release.CommandDetail{AlertName: name,
		Alert: &release.Alert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, GeneratorURL: a.GeneratorURL}})
	if err != nil {
		return 0, err
	}
	now := time.Now()
	audit := store.AuditEntry{Time: now, Actor: "alertmanager", Action: "release." + string(release.Abort), Target: fmt.Sprintf("app/%s run/%d", app, rel.RunID),
		Detail: fmt.Sprintf("alert %s firing since %s", name, a.StartsAt.Format(time.RFC3339))}
	if err := s.store.AddCommand(r.Context(), &store.Command{RunID: rel.RunID, Name: release.Abort, Actor: "alertmanager",
		Detail: detail, CreatedAt: now}, audit); err != nil {
		return 0, err
	}
	return rel.RunID, nil
}

// releaseBegan is when the release of run id began: the start of its
// canary stage, or of the run when no canary stage has started.
func (s *Alertmanager) releaseBegan(ctx context.Context, id int64) (time.Time, error) {
	stages, err := s.store.ListStages(ctx, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the stages of run %d: %w", id, err)
	}
	for _, st := range stages {
		if st.Kind == "canary" && !st.StartedAt.IsZero() {
			return st.StartedAt, nil
		}
	}
	run, err := s.store.GetRun(ctx, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading run %d: %w", id, err)
	}
	return run.StartedAt, nil
}
