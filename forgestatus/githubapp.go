package forgestatus

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipwayci/slipway/excerpt"
)

// GitHubApp is a GitHub App installed on the repository's account: the
// engine writes statuses as the app, with installation tokens it mints
// from the app's private key (GitHub's "authenticating as a GitHub App
// installation") instead of a person's long-lived token.
type GitHubApp struct {
	ID           int64 // the app's ID (its JWT's issuer)
	Installation int64 // the installation on the repository's account
	Key          *rsa.PrivateKey
	Client       *http.Client // default: http.DefaultClient
}

// ParsePrivateKey reads a GitHub App's private key: the PEM file GitHub
// hands out (PKCS#1), or PKCS#8.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("the GitHub App private key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading the GitHub App private key: %v", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the GitHub App private key is %T, not RSA", k)
	}
	return rk, nil
}

// NewGitHubApp is the commit status API of the GitHub repository at
// repoURL, written as the app's installation.
func NewGitHubApp(repoURL, api string, app GitHubApp) (Forge, error) {
	f, err := New("github", repoURL, api, "")
	if err != nil {
		return nil, err
	}
	if app.ID <= 0 || app.Installation <= 0 || app.Key == nil {
		return nil, errors.New("a GitHub App needs its id, its installation id and its private key")
	}
	if app.Client == nil {
		app.Client = http.DefaultClient
	}
	g := f.(github)
	_, name, _ := strings.Cut(g.repo, "/")
	g.tokens = &appTokens{api: g.api, app: app, repo: name, now: time.Now}
	return g, nil
}

// tokenSource hands out the token a request is sent with.
type tokenSource interface {
	token(ctx context.Context) (string, error)
}

// transient marks a failure to get a token that a later try may not meet
// (GitHub's server errors, the network); others are permanent.
type transient struct{ error }

// appTokens mints installation tokens and keeps each until five minutes
// before it expires (GitHub gives them an hour).
type appTokens struct {
	api  string
	app  GitHubApp
	repo string // the one repository its tokens are for (its name, without the owner)
	now  func() time.Time

	mu      sync.Mutex
	current string
	expires time.Time
	minted  time.Time
}

// tokenMargin is how long before its expiry a token is replaced.
const tokenMargin = 5 * time.Minute

// forgetToken drops forge's cached token when the forge refused it (an
// installation suspended or its token revoked before it expired), so the
// retry mints a new one. It reports whether there was one to drop: a
// token minted in the last minute is not dropped, so a refusal of a fresh
// token stays a refusal.
func forgetToken(forge Forge) bool {
	g, ok := forge.(github)
	if !ok || g.tokens == nil {
		return false
	}
	a, ok := g.tokens.(*appTokens)
	if !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == "" || a.now().Sub(a.minted) < time.Minute {
		return false
	}
	a.current = ""
	return true
}

func (a *appTokens) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current != "" && a.now().Add(tokenMargin).Before(a.expires) {
		return a.current, nil
	}
	tok, expires, err := a.mint(ctx)
	if err != nil {
		return "", err
	}
	a.current, a.expires, a.minted = tok, expires, a.now()
	return tok, nil
}

// mint asks GitHub for an installation token, authenticated by a JWT the
// app signs: POST /app/installations/{id}/access_tokens.
func (a *appTokens) mint(ctx context.Context) (string, time.Time, error) {
	jwt, err := a.jwt()
	if err != nil {
		return "", time.Time{}, err
	}
	endpoint := fmt.Sprintf("%s/app/installations/%d/access_tokens", a.api, a.app.Installation)
	// Scoped down to what it is for: this repository's commit statuses,
	// not every repository and permission of the installation.
	scope, _ := json.Marshal(map[string]any{"repositories": []string{a.repo}, "permissions": map[string]string{"statuses": "write"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(scope))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Api-Version", githubAPIVersion)
	req.Header.Set("Authorization", "Bearer "+jwt)
	req.Header.Set("User-Agent", "slipway")
	resp, err := a.app.Client.Do(req)
	if err != nil {
		return "", time.Time{}, transient{fmt.Errorf("minting a GitHub App installation token: %v", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return "", time.Time{}, transient{fmt.Errorf("minting a GitHub App installation token: HTTP %d", resp.StatusCode)}
	}
	if resp.StatusCode != http.StatusCreated {
		return "", time.Time{}, fmt.Errorf("minting a GitHub App installation token: HTTP %d: %s", resp.StatusCode, excerpt.Of(string(body)))
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", time.Time{}, fmt.Errorf("minting a GitHub App installation token: an answer without a token: %s", excerpt.Of(string(body)))
	}
	return out.Token, out.ExpiresAt, nil
}

// jwt is the app's RS256 JSON Web Token: issued a minute in the past
// (clock drift, as GitHub advises), valid for nine minutes (GitHub allows
// ten at most).
func (a *appTokens) jwt() (string, error) {
	now := a.now()
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(9 * time.Minute).Unix(),
		"iss": strconv.FormatInt(a.app.ID, 10),
	})
	signed := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.app.Key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing the GitHub App's JWT: %v", err)
	}
	return signed + "." + enc.EncodeToString(sig), nil
}
