package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/server/auth"
)

func TestResolveReadsSecretsAndLoadsPipelines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nstages:\n  - {name: a, fake: {}}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "tok"), []byte("file-token\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "slipway.yaml"), []byte(`apiVersion: slipway.dev/v1
kind: EngineConfig
repositories:
  - {name: r, url: "https://x/r.git", forge: gitea, webhookSecret: {env: HOOK}, pipelines: [{file: p.yaml}, {path: .slipway.yaml}]}
tokens:
  - {name: a, role: admin, secret: {file: tok}}
`), 0o644)
	c, err := engineconfig.Load(filepath.Join(dir, "slipway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != filepath.Join(dir, ".slipway") {
		t.Errorf("data = %s", c.Data)
	}
	if _, err := resolve(c, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "environment variable HOOK is not set") {
		t.Errorf("missing env: %v", err)
	}
	res, err := resolve(c, func(k string) (string, bool) { return "hook-secret", k == "HOOK" })
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "bom"), []byte("\xef\xbb\xbf\r\n"), 0o600) // "empty" as some editors save it
	for _, am := range []string{"{bearerToken: {file: empty}}", "{username: am, password: {file: empty}}", "{bearerToken: {file: bom}}"} {
		os.WriteFile(filepath.Join(dir, "am.yaml"), []byte("apiVersion: slipway.dev/v1\nkind: EngineConfig\nalertmanager: "+am+"\n"), 0o644)
		c, err := engineconfig.Load(filepath.Join(dir, "am.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resolve(c, os.LookupEnv); err == nil || !strings.Contains(err.Error(), "must not be empty") {
			t.Errorf("alertmanager %s: %v, want an error about empty credentials", am, err)
		}
	}
	// So is an API token's: anyone could send an empty (or blank) one.
	for _, secret := range []string{"{file: empty}", "{env: BLANK}", "{file: bom}"} {
		os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte("apiVersion: slipway.dev/v1\nkind: EngineConfig\ntokens:\n  - {name: ci, role: admin, secret: "+secret+"}\n"), 0o644)
		c, err := engineconfig.Load(filepath.Join(dir, "tokens.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resolve(c, func(k string) (string, bool) { return " \u00a0", k == "BLANK" }); err == nil || !strings.Contains(err.Error(), "token ci: its secret is empty") {
			t.Errorf("token secret %s: %v, want an error about an empty secret", secret, err)
		}
	}
	// A GitHub App's private key is read and parsed when the config is.
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	os.WriteFile(filepath.Join(dir, "app.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	os.WriteFile(filepath.Join(dir, "not.pem"), []byte("ghp_a-token-in-the-wrong-place\n"), 0o600)
	for file, want := range map[string]string{"app.pem": "", "not.pem": "repository r: the GitHub App private key is not PEM"} {
		os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(`apiVersion: slipway.dev/v1
kind: EngineConfig
repositories:
  - {name: r, url: "https://github.com/acme/r.git", forge: github, webhookSecret: {env: HOOK}, pipelines: [{file: p.yaml}],
     status: {githubApp: {id: 12345, installation: 678, privateKey: {file: `+file+`}}}}
`), 0o644)
		c, err := engineconfig.Load(filepath.Join(dir, "app.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := resolve(c, func(string) (string, bool) { return "h", true })
		switch {
		case want == "" && (err != nil || !strings.Contains(res.Repos[0].StatusAppKey, "RSA PRIVATE KEY")):
			t.Errorf("%s: %v", file, err)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("%s: %v, want %q", file, err, want)
		}
	}
	if res.Repos[0].Secret != "hook-secret" || len(res.Repos[0].Sources) != 2 || res.Tokens[0].Hash != sha256.Sum256([]byte("file-token")) {
		t.Errorf("resolved = %+v", res.Repos[0])
	}
}

// The roles a config may give a token are the server's.
func TestConfigRolesAreTheServers(t *testing.T) {
	if got, want := auth.RoleNames(), slices.Sorted(slices.Values(engineconfig.Roles)); !slices.Equal(got, want) {
		t.Errorf("the server's roles %v, the engine config's %v", got, want)
	}
}
