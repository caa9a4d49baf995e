package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// A browser logs in by exchanging an API token for a session: the cookie
// carries only a random session ID (HttpOnly, SameSite=Strict, Secure
// under TLS); the session, held here on the server, names the token and
// carries the CSRF token every state-changing request must send back.

const (
	sessionCookie = "slipway_session"
	loginCookie   = "slipway_login" // the login form's CSRF token, before a session exists
	// SessionTTL is how long a session lasts from login.
	SessionTTL = 12 * time.Hour
	// MaxSessions bounds the sessions held, and MaxSessionsPerToken those
	// of one token; the oldest goes first.
	MaxSessions         = 10000
	MaxSessionsPerToken = 20
)

type session struct {
	id      string
	csrf    string
	token   string // the token's name; looked up on every request
	expires time.Time
	created time.Time
}

// sessions is the server-side session table; safe for concurrent use.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for token name.
func (ss *sessions) start(name string, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*session{}
	}
	ss.sweep(now)
	if len(ss.m) >= MaxSessions {
		ss.dropOldest(func(*session) bool { return true })
	}
	if ss.count(name) >= MaxSessionsPerToken {
		ss.dropOldest(func(s *session) bool { return s.token == name })
	}
	s := &session{id: randomID(), csrf: randomID(), token: name, created: now, expires: now.Add(SessionTTL)}
	ss.m[s.id] = s
	return s
}

// dropOldest drops the oldest session of those which; callers hold mu.
func (ss *sessions) dropOldest(which func(*session) bool) {
	var oldest *session
	for _, s := range ss.m {
		if which(s) && (oldest == nil || s.created.Before(oldest.created)) {
			oldest = s
		}
	}
	if oldest != nil {
		delete(ss.m, oldest.id)
	}
}

// count is how many sessions token name holds; callers hold mu.
func (ss *sessions) count(name string) int {
	n := 0
	for _, s := range ss.m {
		if s.token == name {
			n++
		}
	}
	return n
}

// sweep drops expired sessions; callers hold mu.
func (ss *sessions) sweep(now time.Time) {
	for id, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, id)
		}
	}
}

// get returns the live session a request's cookie names, or nil.
func (ss *sessions) get(r *http.Request, now time.Time) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 64 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	if !now.Before(s.expires) {
		delete(ss.m, s.id)
		return nil
	}
	return s
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// validCSRF compares a request's CSRF token with the expected one in
// constant time.
func validCSRF(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// setCookie writes a cookie the way every Slipway cookie is written:
// Secure when the request came over TLS or people reach the engine over
// https (behind a proxy that ends TLS).
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil || s.secureCookies, SameSite: http.SameSiteStrictMode})
}
