package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/server/web"
)

// The browser UI: server-rendered pages over the same store reads as the
// JSON API, and actions that go through the API's own handlers (same
// roles, app scopes, audit entries).

func (s *Server) routeUI(mux *http.ServeMux) {
	mux.Handle("GET /ui/static/", web.Static())
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /ui/whoami", func(w http.ResponseWriter, r *http.Request) {
		who, _ := s.caller(r)
		if who == nil {
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": who.Name, "role": who.Role.String(), "apps": who.Apps})
	})
	mux.Handle("GET /ui/events", s.auth(RoleViewer, s.events))
	mux.Handle("GET /{$}", s.page(RoleViewer, s.homePage))
	mux.Handle("GET /runs/{id}", s.page(RoleViewer, s.runPage))
	mux.Handle("GET /runs/{id}/cancel", s.page(RoleViewer, s.cancelConfirm))
	mux.Handle("POST /runs/{id}/cancel", s.form(RoleReleaseManager, s.cancelRun, func(r *http.Request) string { return "/runs/" + r.PathValue("id") + "?sent=cancel" }))
	mux.Handle("GET /releases/{run}", s.page(RoleViewer, s.releasePage))
	mux.Handle("GET /apps/{app}", s.page(RoleViewer, s.latestRelease))
	for _, c := range release.Commands {
		mux.Handle("GET /releases/{run}/"+string(c), s.page(RoleViewer, s.commandConfirm(c)))
		mux.Handle("POST /releases/{run}/"+string(c), s.form(RoleReleaseManager, s.releaseForm(c), func(r *http.Request) string {
			return "/releases/" + r.PathValue("run") + "?sent=" + string(c)
		}))
	}
	mux.Handle("GET /rollbacks", s.page(RoleViewer, s.rollbacksPage))
	mux.Handle("GET /rollbacks/{id}", s.page(RoleViewer, s.rollbackPage))
	mux.Handle("GET /deliveries", s.page(RoleViewer, s.deliveriesPage))
	mux.Handle("GET /audit", s.page(RoleAdmin, s.auditPage))
}

// pageFunc builds a page: its title, navigation entry and body, or an
// error to show (an *uiError says which status and words).
type pageFunc func(r *http.Request, who *Token) (web.Page, error)

// uiError is a refusal a page shows as it is: "run 9 not found" (404).
type uiError struct {
	code int
	msg  string
}

func (e *uiError) Error() string { return e.msg }

func notFound(msg string) error { return &uiError{http.StatusNotFound, msg} }

// page serves a page to a logged-in caller of at least role; anyone else
// is sent to the login page.
func (s *Server) page(role Role, build pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, sess := s.caller(r)
		if who == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if who.Role < role {
			s.renderError(w, r, who, sess, http.StatusForbidden, "Not allowed", "token "+who.Name+" has role "+who.Role.String()+"; this page needs "+role.String())
			return
		}
		p, err := build(r, who)
		if rd, ok := err.(*redirect); ok {
			http.Redirect(w, r, rd.to, http.StatusSeeOther)
			return
		}
		if err != nil {
			if ue, ok := err.(*uiError); ok {
				s.renderError(w, r, who, sess, ue.code, http.StatusText(ue.code), ue.msg)
				return
			}
			s.log.Error("building a UI page", "path", r.URL.Path, "err", err)
			s.renderError(w, r, who, sess, http.StatusInternalServerError, "Something failed", "reading what this page shows failed; see the engine log")
			return
		}
		s.render(w, r, who, sess, http.StatusOK, p)
	})
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, who *Token, sess *session, code int, p web.Page) {
	p.Now = time.Now()
	if who != nil {
		p.User, p.Role, p.Admin = who.Name, who.Role.String(), who.Role >= RoleAdmin
	}
	if sess != nil {
		p.CSRF = sess.csrf
	}
	if sent := r.URL.Query().Get("sent"); sent != "" && p.Flash == "" && validCommand(sent) {
		p.Flash = sent + " sent; the page follows what it does"
	}
	if err := s.pages.Render(w, code, pageName(p), p); err != nil {
		s.log.Error("rendering a UI page", "path", r.URL.Path, "err", err)
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

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, who *Token, sess *session, code int, title, msg string) {
	back := ""
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, err := url.Parse(ref); err == nil && localPath(u.RequestURI()) {
			back = u.RequestURI()
		}
	}
	s.render(w, r, who, sess, code, web.Page{Title: title, Body: errorBody{Message: msg, Back: back}})
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
func (s *Server) form(role Role, h handler, done func(*http.Request) string) http.Handler {
	api := s.auth(role, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, sess := s.caller(r)
		if who == nil || sess == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, r, who, sess, http.StatusBadRequest, "Bad form", "reading the form: "+err.Error())
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
		s.renderError(w, r, who, sess, rec.Code, "Not done", orDash(e.Error))
	})
}

type loginBody struct{ CSRF, Next, Error string }

func (loginBody) Template() string { return "login" }

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	csrf := randomID()
	s.setCookie(w, r, loginCookie, csrf, 600)
	next := r.URL.Query().Get("next")
	if r.Method == http.MethodPost {
		next = r.PostForm.Get("next")
	}
	if !localPath(next) {
		next = "/"
	}
	s.render(w, r, nil, nil, code, web.Page{Title: "Log in", Body: loginBody{CSRF: csrf, Next: next, Error: msg}})
}

// login exchanges an API token for a session. The form carries the CSRF
// token its login cookie holds (so another site cannot log a browser in
// as someone else).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.showLogin(w, r, http.StatusBadRequest, "The login form could not be read.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !validCSRF(r.PostForm.Get("csrf"), c.Value) {
		s.showLogin(w, r, http.StatusForbidden, "The login form expired; try again.")
		return
	}
	probe, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
	probe.Header.Set("Authorization", "Bearer "+r.PostForm.Get("token"))
	who := authenticate(s.tokens, probe)
	if who == nil {
		s.log.Warn("UI login refused", "remote", r.RemoteAddr)
		s.showLogin(w, r, http.StatusUnauthorized, "That token is not one this engine knows.")
		return
	}
	sess := s.sessions.start(who.Name, time.Now())
	s.audit(r.Context(), who, "ui.login", "session", "from "+r.RemoteAddr)
	s.setCookie(w, r, loginCookie, "", -1)
	s.setCookie(w, r, sessionCookie, sess.id, int(SessionTTL.Seconds()))
	next := r.PostForm.Get("next")
	if !localPath(next) {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	r.ParseForm()
	who, sess := s.caller(r)
	if sess == nil || !validCSRF(r.PostForm.Get("csrf"), sess.csrf) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.sessions.end(sess.id)
	s.audit(r.Context(), who, "ui.logout", "session", "")
	s.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
