// Package auth is who calls the engine and what they may do: API tokens
// with roles scoped by app, browser sessions with their CSRF tokens, and
// the audit entries of what was done and refused. The API, the UI and
// the hooks share one Guard.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// Role is what a token may do; each role may do what the ones below it may.
type Role int

const (
	RoleViewer         Role = 1 // read runs, logs, deliveries
	RoleReleaseManager Role = 2 // also trigger and cancel runs (later: promote, pause, abort)
	RoleAdmin          Role = 3 // also read the audit log
)

var roles = map[string]Role{"viewer": RoleViewer, "release-manager": RoleReleaseManager, "admin": RoleAdmin}

// ParseRole is the role a config names: viewer, release-manager or admin.
func ParseRole(name string) (Role, bool) {
	r, ok := roles[name]
	return r, ok
}

// RoleNames lists the roles a config may name, sorted.
func RoleNames() []string { return slices.Sorted(maps.Keys(roles)) }

func (r Role) String() string {
	for name, v := range roles {
		if v == r {
			return name
		}
	}
	return "none"
}

// Token is an API token as the engine holds it: only its SHA-256.
type Token struct {
	Name string
	Role Role
	Apps []string // empty: every app
	Hash [32]byte
}

// MayAccess reports whether the token's scope covers app.
func (t *Token) MayAccess(app string) bool {
	return len(t.Apps) == 0 || slices.Contains(t.Apps, app)
}

// Authenticate finds the token a request's bearer credential hashes to.
// Every configured hash is compared, in constant time.
func Authenticate(tokens []Token, r *http.Request) *Token {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || Blank(raw) || len(raw) > 4096 {
		return nil // a blank credential is none, whatever a token's hash is
	}
	sum := sha256.Sum256([]byte(raw))
	var found *Token
	for i := range tokens {
		if subtle.ConstantTimeCompare(sum[:], tokens[i].Hash[:]) == 1 {
			found = &tokens[i]
		}
	}
	return found
}

// Blank reports whether s has nothing a person could see or type as a
// credential: only spaces and invisible format characters (a byte-order
// mark, zero-width spaces). A blank secret would admit anyone.
func Blank(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }) == ""
}
