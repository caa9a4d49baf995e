package auth

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// AuditLog is where the Guard writes who did what.
type AuditLog interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
}

// Guard knows the engine's tokens and its browser sessions: it says who
// makes a request and whether they may, and writes the audit log.
type Guard struct {
	tokens        []Token
	sessions      Sessions
	secureCookies bool // people reach the engine over https
	audit         AuditLog
	denied        denials // refused calls, aggregated in the audit log
	logins        denials // logins and logouts, aggregated the same way
	log           *slog.Logger
}

// NewGuard guards with tokens, writing to audit. url is where people reach
// the engine: an https:// URL makes its cookies Secure even when a proxy
// in front of it ends TLS and the engine itself is asked in plain HTTP.
func NewGuard(tokens []Token, audit AuditLog, url string, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{tokens: tokens, audit: audit, log: log,
		secureCookies: strings.HasPrefix(strings.ToLower(url), "https://")}
}

// Caller is who makes a request: the bearer token it carries or, with
// none, the token its session cookie names (then also the session).
func (g *Guard) Caller(r *http.Request) (*Token, *Session) {
	if r.Header.Get("Authorization") != "" {
		return Authenticate(g.tokens, r), nil
	}
	sess := g.sessions.Get(r, time.Now())
	if sess == nil {
		return nil, nil
	}
	if t := g.token(sess.token); t != nil {
		return t, sess
	}
	return nil, nil
}

func (g *Guard) token(name string) *Token {
	for i := range g.tokens {
		if g.tokens[i].Name == name {
			return &g.tokens[i]
		}
	}
	return nil
}

// Refusal is why a request is not admitted, and the status that says so.
type Refusal struct {
	Code    int
	Message string
}

// Admit says who makes r if they hold at least role; otherwise why not.
// A browser session's state-changing request must carry its CSRF token
// (header X-CSRF-Token). Refusals of mutating calls are audited,
// aggregated (see denials).
func (g *Guard) Admit(r *http.Request, role Role) (*Token, *Refusal) {
	who, sess := g.Caller(r)
	if who == nil {
		return nil, &Refusal{http.StatusUnauthorized, "a valid API token is required"}
	}
	if who.Role < role {
		if r.Method != http.MethodGet {
			g.AuditDenied(r, who, fmt.Sprintf("role %s, needs %s", who.Role, role))
		}
		return who, &Refusal{http.StatusForbidden, fmt.Sprintf("token %s has role %s; this needs %s", who.Name, who.Role, role)}
	}
	if sess != nil && r.Method != http.MethodGet && r.Method != http.MethodHead && !ValidCSRF(r.Header.Get("X-CSRF-Token"), sess.CSRF) {
		g.AuditDenied(r, who, "no valid CSRF token")
		return who, &Refusal{http.StatusForbidden, "a request from a browser session must carry its CSRF token"}
	}
	return who, nil
}

// Login starts a session for the token raw is, or returns nil for a raw
// value that is no token of this engine.
func (g *Guard) Login(r *http.Request, raw string) (*Token, *Session) {
	probe, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
	probe.Header.Set("Authorization", "Bearer "+raw)
	who := Authenticate(g.tokens, probe)
	if who == nil {
		return nil, nil
	}
	sess := g.sessions.Start(who.Name, time.Now())
	g.auditOften(r.Context(), &g.logins, who, "ui.login", "session", "from "+r.RemoteAddr)
	return who, sess
}

// Logout ends sess, which who held.
func (g *Guard) Logout(ctx context.Context, who *Token, sess *Session) {
	g.sessions.End(sess.ID)
	g.auditOften(ctx, &g.logins, who, "ui.logout", "session", "")
}

// Sessions is the guard's session table.
func (g *Guard) Sessions() *Sessions { return &g.sessions }

// SetCookie writes a cookie the way every Slipway cookie is written:
// HttpOnly, SameSite=Strict, and Secure when the request came over TLS or
// people reach the engine over https (behind a proxy that ends TLS).
func (g *Guard) SetCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil || g.secureCookies, SameSite: http.SameSiteStrictMode})
}

// AuditFirst appends to the audit log before an action: when the entry
// cannot be written the action must not be taken (the error says so), so
// no action goes unaudited.
func (g *Guard) AuditFirst(ctx context.Context, who *Token, action, target, detail string) error {
	err := g.audit.AppendAudit(ctx, store.AuditEntry{Time: time.Now(), Actor: who.Name, Action: action, Target: target, Detail: detail})
	if err != nil {
		return fmt.Errorf("writing the audit log (nothing was done): %w", err)
	}
	return nil
}

// Audit appends to the audit log; failing to do so is logged loudly.
func (g *Guard) Audit(ctx context.Context, who *Token, action, target, detail string) {
	err := g.audit.AppendAudit(context.WithoutCancel(ctx), store.AuditEntry{Time: time.Now(), Actor: who.Name, Action: action, Target: target, Detail: detail})
	if err != nil {
		g.log.Error("writing audit log", "actor", who.Name, "action", action, "target", target, "err", err)
	}
}

// AuditDenied writes who's refused call r to the audit log, aggregated
// by token, target and reason (denials): a token refused in a loop costs
// the log one row a minute per target, and at most
// MaxDeniedRowsPerToken rows a minute in all.
func (g *Guard) AuditDenied(r *http.Request, who *Token, detail string) {
	g.auditOften(r.Context(), &g.denied, who, "denied", refusedTarget(cmp.Or(r.Pattern, r.Method+" (no route)"), r), detail)
}

// auditOften writes an entry a token can cause as often as it likes
// (a refusal, a login), aggregated by agg.
func (g *Guard) auditOften(ctx context.Context, agg *denials, who *Token, action, target, detail string) {
	write, since, over := agg.note(who.Name, action+"\x00"+target+"\x00"+detail, time.Now())
	if !write {
		return
	}
	if since > 0 {
		detail += fmt.Sprintf(" (and %d more times in the minute before, not written one by one)", since)
	}
	if over > 0 {
		detail += fmt.Sprintf(" (and %d more of this token's, past %d rows a minute, not written)", over, MaxDeniedRowsPerToken)
	}
	g.Audit(ctx, who, action, target, detail)
}

// refusedTarget is what a refused call was aimed at, for the audit log:
// the route it matched — never the path as sent, which the caller writes
// and which could carry any words — and the app and run it named when
// they are well-formed, so that an admin scoped to an app sees the
// refusals aimed at it.
func refusedTarget(route string, r *http.Request) string {
	target := route
	if app := r.PathValue("app"); release.ValidApp(app) {
		target += " app/" + app
	}
	for _, name := range []string{"id", "run"} {
		if id, err := strconv.ParseInt(r.PathValue(name), 10, 64); err == nil && id > 0 {
			target += " run/" + strconv.FormatInt(id, 10)
		}
	}
	return target
}
