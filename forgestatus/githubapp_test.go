package forgestatus

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// githubAppServer is GitHub's installation token and commit status
// endpoints as its documentation gives them: the token endpoint checks
// the app's JWT (RS256 with the app's key, issuer the app's ID, at most
// ten minutes long), the status endpoint the installation token.
type githubAppServer struct {
	*httptest.Server
	key *rsa.PublicKey

	mu       sync.Mutex
	minted   int
	mintFail []int // status codes the next mints answer with
	ttl      time.Duration
	said     []string // state per status accepted
	problems []string
	at       time.Time // the client's clock, when the test moves it
	revoked  string    // a token the status endpoint refuses
}

func newGitHubAppServer(t *testing.T, key *rsa.PublicKey) *githubAppServer {
	s := &githubAppServer{key: key, ttl: time.Hour}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/app/installations/678/access_tokens":
			if err := s.checkJWT(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")); err != nil {
				s.problems = append(s.problems, "JWT: "+err.Error())
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.Header.Get("Accept") != "application/vnd.github+json" || r.Header.Get("X-GitHub-Api-Version") != githubAPIVersion {
				s.problems = append(s.problems, fmt.Sprintf("token request headers %v", r.Header))
			}
			var scope struct {
				Repositories []string          `json:"repositories"`
				Permissions  map[string]string `json:"permissions"`
			}
			if err := json.NewDecoder(r.Body).Decode(&scope); err != nil || len(scope.Repositories) != 1 || scope.Repositories[0] != "shop" ||
				len(scope.Permissions) != 1 || scope.Permissions["statuses"] != "write" {
				s.problems = append(s.problems, fmt.Sprintf("token asked for %+v (%v), want repository shop and statuses: write only", scope, err))
			}
			if len(s.mintFail) > 0 {
				code := s.mintFail[0]
				s.mintFail = s.mintFail[1:]
				w.WriteHeader(code)
				fmt.Fprint(w, `{"message":"no"}`)
				return
			}
			s.minted++
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"token": fmt.Sprintf("ghs_%d", s.minted),
				"expires_at": time.Now().Add(s.ttl).UTC().Format(time.RFC3339), "permissions": map[string]string{"statuses": "write"}})
		case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/repos/acme/shop/statuses/"):
			if r.Header.Get("Authorization") == "Bearer "+s.revoked {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"message":"Bad credentials"}`)
				return
			}
			if got, want := r.Header.Get("Authorization"), fmt.Sprintf("Bearer ghs_%d", s.minted); got != want {
				s.problems = append(s.problems, fmt.Sprintf("status sent with %q, want %q", got, want))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			var b map[string]string
			json.NewDecoder(r.Body).Decode(&b)
			s.said = append(s.said, b["state"])
			w.WriteHeader(http.StatusCreated)
		default:
			s.problems = append(s.problems, r.Method+" "+r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *githubAppServer) checkJWT(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%d parts", len(parts))
	}
	var header struct{ Alg, Typ string }
	var claims struct {
		Iat, Exp int64
		Iss      string
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			return fmt.Errorf("part %d is not base64url JSON", i)
		}
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(s.key, crypto.SHA256, sum[:], sig); err != nil || header.Alg != "RS256" {
		return fmt.Errorf("alg %s, signature: %v", header.Alg, err)
	}
	now := time.Now().Unix()
	if !s.at.IsZero() {
		now = s.at.Unix()
	}
	if claims.Iss != "12345" || claims.Iat > now || claims.Exp <= now || claims.Exp-claims.Iat > 600 {
		return fmt.Errorf("claims %+v at %d", claims, now)
	}
	return nil
}

func appKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// As a GitHub App: an installation token is minted with the app's JWT,
// reused while it has more than five minutes left, and replaced after.
func TestGitHubAppInstallationTokens(t *testing.T) {
	t.Parallel()
	key := appKey(t)
	srv := newGitHubAppServer(t, &key.PublicKey)
	f, err := NewGitHubApp("https://github.example/acme/shop.git", srv.URL, GitHubApp{ID: 12345, Installation: 678, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	tokens := f.(github).tokens.(*appTokens)
	post := func(state string) {
		t.Helper()
		tokens.now = func() time.Time { return clock }
		srv.mu.Lock()
		srv.at = clock
		srv.mu.Unlock()
		send(t, f, Status{SHA: sample.SHA, Context: "slipway/shop", State: state})
	}
	post(Pending)
	post(Running)
	clock = clock.Add(54 * time.Minute) // six minutes left: still good
	post(Running)
	clock = clock.Add(2 * time.Minute) // four left: replaced
	post(Success)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.minted != 2 || strings.Join(srv.said, " ") != "pending pending pending success" || len(srv.problems) > 0 {
		t.Errorf("minted %d tokens (want 2), statuses %v, problems %v", srv.minted, srv.said, srv.problems)
	}
}

// A token endpoint's server error is retried like any forge's; a refusal
// (a revoked installation, a wrong key) is not, and the run's log says why.
func TestGitHubAppTokenFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		fail     []int
		statuses int
		logged   string
	}{
		{"server error", []int{502}, 1, "github answered minting a GitHub App installation token: HTTP 502; retrying in 10ms"},
		{"refused", []int{404}, 0, `refused: minting a GitHub App installation token: HTTP 404: {"message":"no"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := appKey(t)
			srv := newGitHubAppServer(t, &key.PublicKey)
			srv.mintFail = tt.fail
			f, err := NewGitHubApp(repoURL, srv.URL, GitHubApp{ID: 12345, Installation: 678, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			runs := newRuns()
			NewReporter(runs, map[string]Forge{repoURL: f}, "https://slipway.example/", Options{Backoff: 10 * time.Millisecond}).report(context.Background(), 7)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.said) != tt.statuses || len(srv.problems) > 0 {
				t.Errorf("statuses %v, problems %v", srv.said, srv.problems)
			}
			if log := runs.lines(); !strings.Contains(log, tt.logged) {
				t.Errorf("run log:\n%s\nwant %q", log, tt.logged)
			}
		})
	}
}

// An installation token refused before it expired (suspended, revoked)
// is replaced once; a freshly minted one that is refused stays refused.
func TestGitHubAppRefusedTokenIsReplacedOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		age     time.Duration // of the cached token when the status is sent
		revoked string
		minted  int
		logged  string
	}{
		{"revoked early", 10 * time.Minute, "ghs_1", 2, "HTTP 401 with a token minted a while ago; minting a new one"},
		{"fresh and refused", 10 * time.Second, "ghs_1", 1, `refused: HTTP 401: {"message":"Bad credentials"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := appKey(t)
			srv := newGitHubAppServer(t, &key.PublicKey)
			f, err := NewGitHubApp(repoURL, srv.URL, GitHubApp{ID: 12345, Installation: 678, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			tokens := f.(github).tokens.(*appTokens)
			if _, err := tokens.token(context.Background()); err != nil { // ghs_1, now cached
				t.Fatal(err)
			}
			later := time.Now().Add(tt.age)
			tokens.now = func() time.Time { return later }
			srv.mu.Lock()
			srv.revoked, srv.at = tt.revoked, later
			srv.mu.Unlock()
			runs := newRuns()
			NewReporter(runs, map[string]Forge{repoURL: f}, "https://slipway.example/", Options{Backoff: 10 * time.Millisecond}).report(context.Background(), 7)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.minted != tt.minted || len(srv.problems) > 0 {
				t.Errorf("minted %d (want %d), problems %v", srv.minted, tt.minted, srv.problems)
			}
			if log := runs.lines(); !strings.Contains(log, tt.logged) {
				t.Errorf("run log:\n%s\nwant %q", log, tt.logged)
			}
		})
	}
}

// The key GitHub hands out (PKCS#1 PEM) and PKCS#8 are read; anything
// else is refused with a sentence.
func TestGitHubAppPrivateKeys(t *testing.T) {
	t.Parallel()
	key := appKey(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	for _, good := range [][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	} {
		if k, err := ParsePrivateKey(good); err != nil || !k.Equal(key) {
			t.Errorf("%.30s: %v", good, err)
		}
	}
	for bad, want := range map[string]string{
		"":            "not PEM",
		"ghp_notakey": "not PEM",
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("junk")})): "reading the GitHub App private key",
	} {
		if _, err := ParsePrivateKey([]byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
	if _, err := NewGitHubApp(repoURL, "", GitHubApp{ID: 1, Key: key}); err == nil || !strings.Contains(err.Error(), "installation id") {
		t.Errorf("no installation: %v", err)
	}
}
