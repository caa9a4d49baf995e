package engineconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	c, err := Load("../configs/slipway.yaml")
	if err != nil {
		t.Fatalf("the example engine config is invalid:\n%v", err)
	}
	if c.Listen != "127.0.0.1:8080" || len(c.Repositories) != 2 || len(c.Tokens) != 3 {
		t.Errorf("config = %+v", c)
	}
	_, err = Load("testdata/bad.yaml")
	var errs interface{ Error() string }
	if err == nil {
		t.Fatal("bad config accepted")
	}
	errs = err
	for _, want := range []string{
		`bad.yaml:3:9: listen: "localhost" is not host:port`,
		`webhooks.maxBodyBytes: must be positive`,
		`bad.yaml:5:46: webhooks.reconcileEvery: 5s is not between 30s and 24h0m0s`,
		`repositories[0].name: "Shop" must be lower-case`,
		`repositories[0].url: a clone URL is required (and may not start with '-')`,
		`repositories[0].forge: "bitbucket" is not one of github, gitlab, gitea`,
		`repositories[0].webhookSecret: write exactly one of {env: VAR} or {file: PATH}`,
		`repositories[0].pipelines[0]: write exactly one of file or path`,
		`repositories[1].pipelines: list at least one pipeline`,
		`repositories[1].secrets[0].name: "bad-name" is not a valid secret name`,
		`repositories[1].secrets[0].from: write exactly one of {env: VAR} or {file: PATH}`,
		`repositories[1].secrets[1].branches[0]: bad pattern "a**"`,
		`repositories[1].secrets[1].events[0]: "pull_request" is not one of push, tag, schedule, manual`,
		`repositories[1].secrets[2].name: secret TOK is granted twice`,
		`repositories[1].apps[0].gitops[0].repo: "file:///srv/gitops" is a local path`,
		`repositories[1].apps[0].gitops[0].path: "../up" must be a relative path`,
		`repositories[1].apps[0].argocd[0]: "Bad_App" is not an Argo CD application name`,
		`repositories[1].apps[1].name: app shop is already bound to repository shop2`,
		`repositories[1].apps[2].argocdServer: "https://argocd/" is not host:port`,
		`repositories[1].apps[2].prometheus: "http://u@evil:9090" is not an http:// or https:// URL with a host (and no user)`,
		`repositories[1].apps[2].notify[0]: "javascript:alert(1)" is not an http:// or https:// URL with a host`,
		`repositories[1].cloneFrom[0]: "/home/ops/private" is a local path`,
		`repositories[1].limits: limits may not be negative`,
		`repositories[1].limits: maxMemory "lots" is not a memory quantity`,
		`repositories[1].limits: maxRunLog "0" is not a size`,
		`repositories[1].nodePools[0]: a node pool names a nodeSelector or tolerations`,
		`repositories[1].serviceAccounts[0]: "Cluster_Admin" is not a service account name`,
		`repositories[1].images[0]: "ubuntu" does not start with a registry host`,
		`repositories[1].images[1]: "registry.example.com/UP" is not a registry and a repository path`,
		`sandbox.registries[1]: "10.0.0.5:5000" is not a registry on this machine`,
		`sandbox.registries[2]: "localhost" is not a registry on this machine`,
		`sandbox.registries[3]: "127.0.0.1:2379/x" is not a registry on this machine`,
		`bad.yaml:4:6: url: "ftp://slipway" is not an http(s) URL`,
		`repositories[0].status.token: write exactly one of {env: VAR} or {file: PATH}`,
		`repositories[0].status.api: "javascript:alert(1)" is not an http(s) URL`,
		`repositories[2].status: commit statuses need an http(s) repository URL to find the forge's API, or api: set; "git@github.com:acme/shop.git" is not one`,
		`repositories[3].status.githubApp: a GitHub App writes statuses on GitHub only; this repository's forge is gitea`,
		`repositories[4].status: write token or githubApp, not both`,
		`repositories[4].status.githubApp.privateKey: write exactly one of {env: VAR} or {file: PATH}`,
		`repositories[5].status.githubApp: id and installation are the app's ID and its installation's ID (numbers above 0)`,
		`tokens[0].role: "root" is not one of`,
		`tokens[1].name: a unique name is required`,
		`tokens[1]: write exactly one of sha256`,
		`tokens[2]: write exactly one of sha256`,
		`prometheus: "http://ops@prometheus:9090" is not an http:// or https:// URL with a host (and no user)`,
		`trivy.token: is the token of a Trivy server; set trivy.server too`,
		`kubernetes.namespace: "Builds" is not a Kubernetes name`,
		`kubernetes.serviceAccounts[1]: "Cluster_Admin" is not a Kubernetes name`,
		`kubernetes.fence: "api" is neither host:port nor api-server`,
	} {
		if !strings.Contains(errs.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(errs.Error(), "sandbox.registries[0]") {
		t.Errorf("a loopback registry refused:\n%v", err)
	}
	if _, err := Load("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing config: %v", err)
	}
}

// The database is PostgreSQL by URL, its password by reference: a URL
// holding one is refused (and not repeated in the error), as is anything
// that is not a postgres:// URL.
func TestDatabaseConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600)
	for db, want := range map[string]string{
		`{url: "postgres://slipway@db.internal:5432/slipway?sslmode=verify-full", password: {file: pw}}`: "",
		`{url: "postgresql://slipway@db/slipway"}`:                                                       "",
		`{url: "postgres://slipway:hunter2@db/slipway"}`:                                                 "database.url: holds a password",
		`{url: "postgres://db/slipway?password=hunter2"}`:                                                "database.url: holds a password parameter",
		`{url: "mysql://db/slipway"}`:                                                                    "database.url: must be a postgres://",
		`{url: "host=db user=slipway"}`:                                                                  "database.url: must be a postgres://",
		`{url: "postgres:///slipway"}`:                                                                   "database.url: must be a postgres://",
		`{url: "postgres://db/s", password: {env: A, file: B}}`:                                          "database.password: write exactly one of",
		`{url: "postgres://db/s", pasword: {env: A}}`:                                                    "pasword",
	} {
		os.WriteFile(filepath.Join(dir, "db.yaml"), []byte("apiVersion: slipway.dev/v1\nkind: EngineConfig\ndatabase: "+db+"\n"), 0o644)
		c, err := Load(filepath.Join(dir, "db.yaml"))
		if want != "" {
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("database %s: %v, want an error with %q that does not repeat the password", db, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("database %s: %v", db, err)
			continue
		}
		pw, err := c.DatabasePassword(os.LookupEnv)
		if wantPW := map[bool]string{true: "s3cret", false: ""}[c.Database.Password != nil]; err != nil || pw != wantPW {
			t.Errorf("database %s: password %q, %v; want %q", db, pw, err, wantPW)
		}
	}
}
