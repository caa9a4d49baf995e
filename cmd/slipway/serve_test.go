package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/forgestatus"
	"github.com/slipwayci/slipway/triggers"
)

// A repository whose statuses are written as a GitHub App gets a forge
// that mints the app's installation token and sends it.
func TestStatusForgeAsAGitHubApp(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app/installations/678/access_tokens" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token": "ghs_app", "expires_at": %q}`, time.Now().Add(time.Hour).Format(time.RFC3339))
	}))
	defer srv.Close()
	repo := &triggers.Repo{Config: engineconfig.Repository{Name: "shop", URL: "https://github.com/acme/shop.git", Forge: "github",
		Status: &engineconfig.StatusConfig{API: srv.URL, GitHubApp: &engineconfig.GitHubAppConfig{ID: 12345, Installation: 678}}},
		StatusAppKey: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))}
	f, err := statusForge(repo)
	if err != nil {
		t.Fatal(err)
	}
	req, err := f.Request(context.Background(), forgestatus.Status{SHA: "abc", Context: "slipway/shop", State: forgestatus.Pending})
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer ghs_app" || req.URL.String() != srv.URL+"/repos/acme/shop/statuses/abc" {
		t.Errorf("status request %s with %q", req.URL, got)
	}
}
