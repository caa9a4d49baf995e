// Package ui is the browser UI: server-rendered pages over the same store
// reads as the JSON API, login sessions with CSRF tokens (the auth
// Guard's), and actions that go through the API's own handlers (same
// roles, app scopes, audit entries). Each tab follows the API's live
// stream (/ui/events); templates and assets are in package web.
package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/api"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/server/web"
	"github.com/slipwayci/slipway/triggers"
)

// Store is what the pages read.
type Store interface {
	GetRun(ctx context.Context, id int64) (*store.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) ([]*store.Run, error)
	CountRuns(ctx context.Context, apps []string) (map[store.RunStatus]int, error)
	ReadLogsBefore(ctx context.Context, runID int64, stage string, beforeSeq int64, limit int) ([]store.LogLine, error)
	ListArtifacts(ctx context.Context, runID int64) ([]store.Artifact, error)
	GetArtifact(ctx context.Context, runID int64, index int, name string) (*store.Artifact, error)
	ListReleases(ctx context.Context, app string, inFlight bool) ([]*store.Release, error)
	ListMeasurements(ctx context.Context, runID int64) ([]store.Measurement, error)
	GetRollback(ctx context.Context, id int64) (*store.Rollback, error)
	ListRollbacks(ctx context.Context, f store.RollbackFilter) ([]*store.Rollback, error)
	ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error)
	ListAudit(ctx context.Context, beforeID int64, limit int) ([]store.AuditEntry, error)
}

// UI serves the pages.
type UI struct {
	store Store
	api   *api.API
	guard *auth.Guard
	repos []*triggers.Repo
	pages *web.Pages
	log   *slog.Logger
}

// New is the UI over st; its forms call a's handlers.
func New(st Store, a *api.API, guard *auth.Guard, repos []*triggers.Repo, log *slog.Logger) *UI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pages, err := web.Load()
	if err != nil {
		panic(err) // the embedded templates are part of the binary: a test catches this
	}
	return &UI{store: st, api: a, guard: guard, repos: repos, pages: pages, log: log}
}

// Route adds the pages, the login and the static assets to mux.
func (u *UI) Route(mux *http.ServeMux) {
	mux.Handle("GET /ui/static/", web.Static())
	mux.HandleFunc("GET /login", u.loginPage)
	mux.HandleFunc("POST /login", u.login)
	mux.HandleFunc("POST /logout", u.logout)
	mux.HandleFunc("GET /ui/whoami", func(w http.ResponseWriter, r *http.Request) {
		who, _ := u.guard.Caller(r)
		if who == nil {
			view.Error(w, http.StatusUnauthorized, "not logged in")
			return
		}
		view.JSON(w, http.StatusOK, map[string]any{"name": who.Name, "role": who.Role.String(), "apps": who.Apps})
	})
	mux.Handle("GET /{$}", u.page(auth.RoleViewer, u.homePage))
	mux.Handle("GET /runs/{id}", u.page(auth.RoleViewer, u.runPage))
	mux.Handle("GET /runs/{id}/cancel", u.page(auth.RoleViewer, u.cancelConfirm))
	mux.Handle("POST /runs/{id}/cancel", u.form(auth.RoleReleaseManager, u.api.CancelRun(), func(r *http.Request) string { return "/runs/" + r.PathValue("id") + "?sent=cancel" }))
	mux.Handle("GET /releases/{run}", u.page(auth.RoleViewer, u.releasePage))
	mux.Handle("GET /apps/{app}", u.page(auth.RoleViewer, u.latestRelease))
	for _, c := range release.Commands {
		mux.Handle("GET /releases/{run}/"+string(c), u.page(auth.RoleViewer, u.commandConfirm(c)))
		mux.Handle("POST /releases/{run}/"+string(c), u.form(auth.RoleReleaseManager, u.releaseForm(c), func(r *http.Request) string {
			return "/releases/" + r.PathValue("run") + "?sent=" + string(c)
		}))
	}
	mux.Handle("GET /rollbacks", u.page(auth.RoleViewer, u.rollbacksPage))
	mux.Handle("GET /rollbacks/{id}", u.page(auth.RoleViewer, u.rollbackPage))
	mux.Handle("GET /deliveries", u.page(auth.RoleViewer, u.deliveriesPage))
	mux.Handle("GET /audit", u.page(auth.RoleAdmin, u.auditPage))
}

// pageFunc builds a page: its title, navigation entry and body, or an
// error to show (an *uiError says which status and words).
type pageFunc func(r *http.Request, who *auth.Token) (web.Page, error)

// uiError is a refusal a page shows as it is: "run 9 not found" (404).
type uiError struct {
	code int
	msg  string
}

func (e *uiError) Error() string { return e.msg }

func notFound(msg string) error { return &uiError{http.StatusNotFound, msg} }

// page serves a page to a logged-in caller of at least role; anyone else
// is sent to the login page.
func (u *UI) page(role auth.Role, build pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, sess := u.guard.Caller(r)
		if who == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if who.Role < role {
			u.renderError(w, r, who, sess, http.StatusForbidden, "Not allowed", "token "+who.Name+" has role "+who.Role.String()+"; this page needs "+role.String())
			return
		}
		p, err := build(r, who)
		if rd, ok := err.(*redirect); ok {
			http.Redirect(w, r, rd.to, http.StatusSeeOther)
			return
		}
		if err != nil {
			if ue, ok := err.(*uiError); ok {
				u.renderError(w, r, who, sess, ue.code, http.StatusText(ue.code), ue.msg)
				return
			}
			u.log.Error("building a UI page", "path", r.URL.Path, "err", err)
			u.renderError(w, r, who, sess, http.StatusInternalServerError, "Something failed", "reading what this page shows failed; see the engine log")
			return
		}
		u.render(w, r, who, sess, http.StatusOK, p)
	})
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, who *auth.Token, sess *auth.Session, code int, p web.Page) {
	p.Now = time.Now()
	if who != nil {
		p.User, p.Role, p.Admin = who.Name, who.Role.String(), who.Role >= auth.RoleAdmin
	}
	if sess != nil {
		p.CSRF = sess.CSRF
	}
	if sent := r.URL.Query().Get("sent"); sent != "" && p.Flash == "" && validCommand(sent) {
		p.Flash = sent + " sent; the page follows what it does"
	}
	if err := u.pages.Render(w, code, pageName(p), p); err != nil {
		u.log.Error("rendering a UI page", "path", r.URL.Path, "err", err)
		http.Error(w, "rendering this page failed; see the engine log", http.StatusInternalServerError)
	}
}

// pageName is the template a page renders with: its Nav, unless the body
// says otherwise.
func pageName(p web.Page) string {
	if n, ok := p.Body.(interface{ Template() string }); ok {
		return n.Template()
	}
	return p.Nav
}

func validCommand(c string) bool {
	_, ok := release.ParseCommand(c)
	return ok || c == "cancel"
}

type errorBody struct{ Message, Back string }

func (errorBody) Template() string { return "error" }

func (u *UI) renderError(w http.ResponseWriter, r *http.Request, who *auth.Token, sess *auth.Session, code int, title, msg string) {
	back := ""
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, err := url.Parse(ref); err == nil && localPath(u.RequestURI()) {
			back = u.RequestURI()
		}
	}
	u.render(w, r, who, sess, code, web.Page{Title: title, Body: errorBody{Message: msg, Back: back}})
}

// localPath reports whether p is a path on this server (not //host/…),
// so a ?next= or Referer never redirects elsewhere.
// Browsers drop tabs and newlines from a URL and read "\\" as "/", so
// "/\t/evil.example" is "//evil.example" to them: a path holding a control
// character or a backslash anywhere is refused.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || len(p) > 2048 {
		return false
	}
	return !strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' })
}

// form serves a browser form for an API handler: it checks the session
// and its CSRF token, passes the form's fields to h as the JSON body the
// API takes, and answers with a redirect to done (success) or a page
// with the API's own error.
func (u *UI) form(role auth.Role, h api.Handler, done func(*http.Request) string) http.Handler {
	api := u.api.Auth(role, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, sess := u.guard.Caller(r)
		if who == nil || sess == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			u.renderError(w, r, who, sess, http.StatusBadRequest, "Bad form", "reading the form: "+err.Error())
			return
		}
		body := map[string]any{}
		if v := r.PostForm.Get("reason"); v != "" {
			body["reason"] = v
		}
		if r.PostForm.Get("full") == "true" {
			body["full"] = true
		}
		b, _ := json.Marshal(body)
		inner := r.Clone(r.Context())
		inner.Body = http.NoBody
		if len(body) > 0 {
			inner.Body = io.NopCloser(bytes.NewReader(b))
			inner.ContentLength = int64(len(b))
		}
		inner.Header.Set("Content-Type", "application/json")
		inner.Header.Set("X-CSRF-Token", r.PostForm.Get("csrf"))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, inner)
		if rec.Code/100 == 2 {
			http.Redirect(w, r, done(r), http.StatusSeeOther)
			return
		}
		var e struct{ Error string }
		json.Unmarshal(rec.Body.Bytes(), &e)
		u.renderError(w, r, who, sess, rec.Code, "Not done", view.OrDash(e.Error))
	})
}

type loginBody struct{ CSRF, Next, Error string }

func (loginBody) Template() string { return "login" }

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, "")
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	csrf := auth.RandomID()
	u.guard.SetCookie(w, r, auth.LoginCookie, csrf, 600)
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	if !localPath(next) {
		next = "/"
	}
	u.render(w, r, nil, nil, code, web.Page{Title: "Log in", Body: loginBody{CSRF: csrf, Next: next, Error: msg}})
}

// login exchanges an API token for a session. The form carries the CSRF
// token its login cookie holds (so another site cannot log a browser in
// as someone else).
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		u.showLogin(w, r, http.StatusBadRequest, "The login form could not be read.")
		return
	}
	c, err := r.Cookie(auth.LoginCookie)
	if err != nil || !auth.ValidCSRF(r.PostForm.Get("csrf"), c.Value) {
		u.showLogin(w, r, http.StatusForbidden, "The login form expired; try again.")
		return
	}
	who, sess := u.guard.Login(r, r.PostForm.Get("token"))
	if who == nil {
		u.log.Warn("UI login refused", "remote", r.RemoteAddr)
		u.showLogin(w, r, http.StatusUnauthorized, "That token is not one this engine knows.")
		return
	}
	u.guard.SetCookie(w, r, auth.LoginCookie, "", -1)
	u.guard.SetCookie(w, r, auth.SessionCookie, sess.ID, int(auth.SessionTTL.Seconds()))
	next := r.PostForm.Get("next")
	if !localPath(next) {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	r.ParseForm()
	who, sess := u.guard.Caller(r)
	if sess == nil || !auth.ValidCSRF(r.PostForm.Get("csrf"), sess.CSRF) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	u.guard.Logout(r.Context(), who, sess)
	u.guard.SetCookie(w, r, auth.SessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
