package auth

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
	// SessionCookie holds a browser's session ID, and LoginCookie the
	// login form's CSRF token before a session exists.
	SessionCookie = "slipway_session"
	LoginCookie   = "slipway_login"
	// SessionTTL is how long a session lasts from login.
	SessionTTL = 12 * time.Hour
	// MaxSessions bounds the sessions held, and MaxSessionsPerToken those
	// of one token; the oldest goes first.
	MaxSessions         = 10000
	MaxSessionsPerToken = 20
)

// Session is one browser's login.
type Session struct {
	ID      string
	CSRF    string // what every state-changing request of the session sends back
	token   string // the token's name; looked up on every request
	expires time.Time
	created time.Time
}

// Sessions is the server-side session table; safe for concurrent use.
type Sessions struct {
	mu sync.Mutex
	m  map[string]*Session
}

// RandomID is 32 random bytes, URL-safe: a session ID or a CSRF token.
func RandomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start makes a session for token name.
func (ss *Sessions) Start(name string, now time.Time) *Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = map[string]*Session{}
	}
	ss.sweep(now)
	if len(ss.m) >= MaxSessions {
		ss.dropOldest(func(*Session) bool { return true })
	}
	if ss.count(name) >= MaxSessionsPerToken {
		ss.dropOldest(func(s *Session) bool { return s.token == name })
	}
	s := &Session{ID: RandomID(), CSRF: RandomID(), token: name, created: now, expires: now.Add(SessionTTL)}
	ss.m[s.ID] = s
	return s
}

// dropOldest drops the oldest session of those which; callers hold mu.
func (ss *Sessions) dropOldest(which func(*Session) bool) {
	var oldest *Session
	for _, s := range ss.m {
		if which(s) && (oldest == nil || s.created.Before(oldest.created)) {
			oldest = s
		}
	}
	if oldest != nil {
		delete(ss.m, oldest.ID)
	}
}

// count is how many sessions token name holds; callers hold mu.
func (ss *Sessions) count(name string) int {
	n := 0
	for _, s := range ss.m {
		if s.token == name {
			n++
		}
	}
	return n
}

// sweep drops expired sessions; callers hold mu.
func (ss *Sessions) sweep(now time.Time) {
	for id, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, id)
		}
	}
}

// Get returns the live session a request's cookie names, or nil.
func (ss *Sessions) Get(r *http.Request, now time.Time) *Session {
	c, err := r.Cookie(SessionCookie)
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
		delete(ss.m, s.ID)
		return nil
	}
	return s
}

// End ends session id (a logout).
func (ss *Sessions) End(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// ValidCSRF compares a request's CSRF token with the expected one in
// constant time.
func ValidCSRF(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
