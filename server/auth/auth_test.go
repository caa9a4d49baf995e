package auth

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSessionsExpireAndAreBounded(t *testing.T) {
	t.Parallel()
	var ss Sessions
	now := time.Now()
	s := ss.Start("rm", now)
	req := func(id string) *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: id})
		return r
	}
	if ss.Get(req(s.ID), now.Add(SessionTTL-time.Second)) == nil {
		t.Error("a session is gone before its TTL")
	}
	if ss.Get(req(s.ID), now.Add(SessionTTL)) != nil {
		t.Error("a session outlives its TTL")
	}
	for i := range MaxSessions + 5 {
		ss.Start(fmt.Sprint("token-", i%1000), now.Add(time.Duration(i)))
	}
	if len(ss.m) != MaxSessions {
		t.Errorf("%d sessions held, want at most %d", len(ss.m), MaxSessions)
	}
	var newest *Session
	for i := range MaxSessionsPerToken + 5 {
		newest = ss.Start("viewer", now.Add(time.Hour+time.Duration(i)))
	}
	if n := ss.count("viewer"); n != MaxSessionsPerToken || ss.Get(req(newest.ID), now.Add(time.Hour)) == nil {
		t.Errorf("one token holds %d sessions (want %d, its newest kept)", n, MaxSessionsPerToken)
	}
}

// Behind a proxy that ends TLS the engine is asked in plain HTTP; an
// https:// url in its config still makes every cookie Secure, and so does
// a request that came over TLS.
func TestCookiesAreSecureBehindATLSProxy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url    string
		tls    bool
		secure bool
	}{
		{"", false, false}, {"http://slipway.internal", false, false},
		{"https://slipway.example.com", false, true}, {"HTTPS://slipway.example.com", false, true}, {"", true, true},
	} {
		g := NewGuard(nil, nil, tt.url, nil)
		target := "http://slipway/login"
		if tt.tls {
			target = "https://slipway/login" // httptest gives it a TLS state
		}
		r := httptest.NewRequest("GET", target, nil)
		w := httptest.NewRecorder()
		g.SetCookie(w, r, SessionCookie, "v", 60)
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Secure != tt.secure {
			t.Errorf("url %q, TLS %v: cookies %v, want Secure %v", tt.url, tt.tls, cookies, tt.secure)
		}
	}
}

// The same refusal (one token, one call, one reason) is written once a
// minute; the next entry says how many were not.
func TestRefusalsAreWrittenOnceAMinute(t *testing.T) {
	t.Parallel()
	var d denials
	start := time.Unix(1000, 0)
	for i := range 5 {
		if write, _, _ := d.note("v", "k", start.Add(time.Duration(i)*time.Second)); write != (i == 0) {
			t.Errorf("refusal %d: written %v", i, write)
		}
	}
	if write, since, _ := d.note("v", "k", start.Add(deniedEvery+time.Second)); !write || since != 4 {
		t.Errorf("the first refusal after the minute: written %v, since %d; want written, saying 4", write, since)
	}
	if write, _, _ := d.note("v", "other", start.Add(2*time.Second)); !write {
		t.Error("another refusal was not written")
	}
	// Past MaxDeniedRowsPerToken different refusals in a minute, a token's
	// are counted, not written; its first row of the next minute says so.
	var b denials
	written := 0
	for i := range 3 * MaxDeniedRowsPerToken {
		if write, _, _ := b.note("v", fmt.Sprint("target ", i), start.Add(time.Duration(i)*time.Millisecond)); write {
			written++
		}
	}
	if write, _, _ := b.note("other-token", "target 0", start); written != MaxDeniedRowsPerToken || !write {
		t.Errorf("%d of a token's %d different refusals written in a minute, want %d (and another token's written: %v)",
			written, 3*MaxDeniedRowsPerToken, MaxDeniedRowsPerToken, write)
	}
	if write, _, over := b.note("v", "target new", start.Add(deniedEvery+time.Second)); !write || over != 2*MaxDeniedRowsPerToken {
		t.Errorf("the token's first refusal of the next minute: written %v, over %d; want written, saying %d", write, over, 2*MaxDeniedRowsPerToken)
	}
}

// A blank credential is none: not even a token whose secret was empty
// (the config refuses those) is found by it.
func TestBlankCredentialsAuthenticateNobody(t *testing.T) {
	t.Parallel()
	tokens := []Token{{Name: "blank", Role: RoleAdmin, Hash: sha256.Sum256(nil)}, {Name: "t", Role: RoleViewer, Hash: sha256.Sum256([]byte("s3cret"))}}
	for _, h := range []string{"Bearer ", "Bearer  ", "Bearer \u00a0", "Bearer \t\u2003", "Bearer \ufeff", "Bearer \u200b\u2060", "bearer s3cret", "s3cret"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if got := Authenticate(tokens, r); got != nil {
			t.Errorf("Authorization %q authenticates as %s", h, got.Name)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer s3cret ")
	if got := Authenticate(tokens, r); got == nil || got.Name != "t" {
		t.Errorf("a token with a trailing space: %v", got)
	}
}
