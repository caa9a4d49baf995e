// Package engineconfig reads the engine config file (slipway.yaml: where
// the engine listens, the repositories it watches and what each may do,
// API tokens, the Alertmanager receiver, the settings of the stages) and
// checks it whole with FILE:LINE:COL positions. It reads the secrets the
// config references when asked (ReadSecret); cmd/slipway maps the config
// onto the components (resolve.go there).
package engineconfig

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayci/slipway/forgeapi"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

// Kind is the kind of an engine config file.
const Kind = "EngineConfig"

// Config is the engine config file (configs/slipway.yaml documents it).
type Config struct {
	APIVersion   string              `yaml:"apiVersion"`
	Kind         string              `yaml:"kind"`
	Listen       string              `yaml:"listen"` // default 127.0.0.1:8080
	URL          string              `yaml:"url"`    // where people reach the engine, for links; default http:// and the address it listens on
	Data         string              `yaml:"data"`   // default .slipway beside the config
	Webhooks     WebhookConfig       `yaml:"webhooks"`
	Repositories []Repository        `yaml:"repositories"`
	Tokens       []TokenConfig       `yaml:"tokens"`
	Alertmanager *AlertmanagerConfig `yaml:"alertmanager"`
	Database     *DatabaseConfig     `yaml:"database"` // nil: SQLite in Data
	Sandbox      SandboxConfig       `yaml:"sandbox"`
	// Prometheus is the Prometheus (an http(s) URL) a canary's analysis
	// asks when its pipeline names none.
	Prometheus string           `yaml:"prometheus"`
	Trivy      TrivyConfig      `yaml:"trivy"`
	Kubernetes KubernetesConfig `yaml:"kubernetes"`

	file string
}

// DatabaseConfig puts the engine's store in PostgreSQL, where several
// engines can share it. The password is a reference, never in the URL.
type DatabaseConfig struct {
	URL      string              `yaml:"url"` // postgres://user@host:5432/db?sslmode=…
	Password *pipeline.SecretRef `yaml:"password"`
	// LeaseTTL is how long a run stays with an engine that stopped
	// renewing its lease (it was killed, or lost the database) before
	// another engine takes it over; default 15s.
	LeaseTTL pipeline.Duration `yaml:"leaseTTL"`
}

// SandboxConfig is what the engine's own sandbox (local builds) may reach.
type SandboxConfig struct {
	// Registries are the registries on the engine's machine (host:port
	// on loopback) that a local build may push to and pull from,
	// relayed into its network; none by default. No other port of the
	// machine is reachable from a build.
	Registries []string `yaml:"registries"`
}

// SandboxRegistries is the list a local builder relays (never nil: an
// engine relays only what its config lists).
func (c *Config) SandboxRegistries() []string {
	return append([]string{}, c.Sandbox.Registries...)
}

// DefaultLeaseTTL is DatabaseConfig.LeaseTTL's default.
const DefaultLeaseTTL = 15 * time.Second

// Forges are the forges a repository may be on: where its webhooks come
// from and its commit statuses go (a test in triggers checks each has its
// intake).
var Forges = []string{"github", "gitlab", "gitea"}

// AlertmanagerConfig enables POST /hooks/alertmanager: how Alertmanager
// authenticates (its http_config: a bearer token, or basic auth) and which
// label of an alert names the app whose release it rolls back.
type AlertmanagerConfig struct {
	BearerToken *pipeline.SecretRef `yaml:"bearerToken"`
	Username    string              `yaml:"username"`
	Password    *pipeline.SecretRef `yaml:"password"`
	AppLabel    string              `yaml:"appLabel"` // default "app"
}

// Roles are the roles a token may hold, least first: a viewer reads, a
// release manager also steers releases, an admin also runs pipelines and
// manages the engine. (The server gives them their rights; a test in
// cmd/slipway checks the two lists agree.)
var Roles = []string{"viewer", "release-manager", "admin"}

// TokenConfig is one API token: its SHA-256 (hex) kept at rest, or a
// reference to its value, hashed when the config is loaded.
type TokenConfig struct {
	Name   string              `yaml:"name"`
	Role   string              `yaml:"role"` // viewer, release-manager, admin
	Apps   []string            `yaml:"apps"` // empty: every app
	SHA256 string              `yaml:"sha256"`
	Secret *pipeline.SecretRef `yaml:"secret"`
}

var (
	repoName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	appLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	varName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hexHash  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	dnsName  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// Load reads and validates an engine config file; problems come back all
// at once as strictyaml.Errors.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading engine config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, pipeline.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading engine config %s: %w", path, err)
	}
	c := &Config{}
	pos, errs := strictyaml.Decode(path, data, c, strictyaml.DefaultLimits)
	if len(errs) > 0 && len(pos) == 0 {
		return nil, errs
	}
	v := &checker{file: path, pos: pos, errs: errs}
	v.config(c)
	if len(v.errs) > 0 {
		v.errs.Sort()
		return nil, v.errs
	}
	c.file = path
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Data == "" {
		c.Data = ".slipway"
	}
	if !filepath.IsAbs(c.Data) {
		c.Data = filepath.Join(filepath.Dir(path), c.Data)
	}
	if c.Webhooks.MaxBodyBytes == 0 {
		c.Webhooks.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c, nil
}

type checker struct {
	file string
	pos  strictyaml.Positions
	errs strictyaml.Errors
}

func (v *checker) failf(path, format string, args ...any) {
	p := v.pos.At(path)
	v.errs = append(v.errs, &strictyaml.Error{File: v.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *checker) ref(path string, r pipeline.SecretRef) {
	if (r.Env == "") == (r.File == "") {
		v.failf(path, "write exactly one of {env: VAR} or {file: PATH}")
	}
}

func (v *checker) config(c *Config) {
	if c.APIVersion != pipeline.APIVersion {
		v.failf("apiVersion", "must be %q, found %q", pipeline.APIVersion, c.APIVersion)
	}
	if c.Kind != Kind {
		v.failf("kind", "must be %q, found %q", Kind, c.Kind)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			v.failf("listen", "%q is not host:port", c.Listen)
		}
	}
	if c.Webhooks.MaxBodyBytes < 0 {
		v.failf("webhooks.maxBodyBytes", "must be positive")
	}
	if d := time.Duration(c.Webhooks.ReconcileEvery); d != 0 && (d < MinReconcileEvery || d > MaxReconcileEvery) {
		v.failf("webhooks.reconcileEvery", "%s is not between %s and %s", d, MinReconcileEvery, MaxReconcileEvery)
	}
	if c.URL != "" && !httpURL(c.URL) {
		v.failf("url", "%q is not an http(s) URL", c.URL)
	}
	v.settings(c)
	names, apps := map[string]bool{}, map[string]string{}
	for i, r := range c.Repositories {
		at := fmt.Sprintf("repositories[%d]", i)
		switch {
		case !repoName.MatchString(r.Name):
			v.failf(at+".name", "%q must be lower-case letters, digits, '.', '_' or '-'", r.Name)
		case names[r.Name]:
			v.failf(at+".name", "duplicate repository name %q", r.Name)
		}
		names[r.Name] = true
		if r.URL == "" || strings.HasPrefix(r.URL, "-") {
			v.failf(at+".url", "a clone URL is required (and may not start with '-')")
		}
		if !slices.Contains(Forges, r.Forge) {
			v.failf(at+".forge", "%q is not one of %s", r.Forge, strings.Join(Forges, ", "))
		}
		v.ref(at+".webhookSecret", r.WebhookSecret)
		if r.Token != nil {
			v.ref(at+".token", *r.Token)
		}
		if s := r.Status; s != nil {
			v.statusCredential(at+".status", r.Forge, s)
			if _, _, err := forgeapi.Locate(r.Forge, r.URL, s.API); s.API != "" && !httpURL(s.API) {
				v.failf(at+".status.api", "%q is not an http(s) URL", s.API)
			} else if err != nil {
				v.failf(at+".status", "%v", err)
			}
		}
		if len(r.Pipelines) == 0 {
			v.failf(at+".pipelines", "list at least one pipeline ({file: PATH} or {path: PATH-IN-REPO})")
		}
		for j, p := range r.Pipelines {
			if (p.File == "") == (p.Path == "") {
				v.failf(fmt.Sprintf("%s.pipelines[%d]", at, j), "write exactly one of file or path")
			}
		}
		v.grants(at, r, apps)
	}
	v.tokens(c.Tokens)
	v.database(c.Database)
	for i, r := range c.Sandbox.Registries {
		host, port, err := net.SplitHostPort(r)
		n, perr := strconv.Atoi(port)
		if ip := net.ParseIP(host); err != nil || perr != nil || n < 1 || n > 65535 || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			v.failf(fmt.Sprintf("sandbox.registries[%d]", i), "%q is not a registry on this machine: host:port on loopback (127.0.0.1:5000, [::1]:5000, localhost:5000)", r)
		}
	}
	if a := c.Alertmanager; a != nil {
		switch {
		case (a.BearerToken == nil) == (a.Password == nil):
			v.failf("alertmanager", "write exactly one of bearerToken or username and password (as Alertmanager's http_config sends them)")
		case a.BearerToken != nil:
			v.ref("alertmanager.bearerToken", *a.BearerToken)
			if a.Username != "" {
				v.failf("alertmanager.username", "goes with password, not bearerToken")
			}
		default:
			v.ref("alertmanager.password", *a.Password)
			if a.Username == "" {
				v.failf("alertmanager.username", "is required with password")
			}
		}
	}
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// statusCredential checks that a repository's commit statuses are
// written with exactly one credential: a token, or a GitHub App.
func (v *checker) statusCredential(at, forge string, s *StatusConfig) {
	a := s.GitHubApp
	switch {
	case a == nil:
		v.ref(at+".token", s.Token)
		return
	case s.Token != (pipeline.SecretRef{}):
		v.failf(at, "write token or githubApp, not both")
	case forge != "github":
		v.failf(at+".githubApp", "a GitHub App writes statuses on GitHub only; this repository's forge is %s", forge)
	case a.ID <= 0 || a.Installation <= 0:
		v.failf(at+".githubApp", "id and installation are the app's ID and its installation's ID (numbers above 0)")
	}
	v.ref(at+".githubApp.privateKey", a.PrivateKey)
}

func (v *checker) tokens(tokens []TokenConfig) {
	names := map[string]bool{}
	for i, t := range tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" || names[t.Name] {
			v.failf(at+".name", "a unique name is required")
		}
		names[t.Name] = true
		if !slices.Contains(Roles, t.Role) {
			v.failf(at+".role", "%q is not one of %s", t.Role, strings.Join(Roles, ", "))
		}
		switch {
		case (t.SHA256 == "") == (t.Secret == nil):
			v.failf(at, "write exactly one of sha256 (the token's hash) or secret (a reference to it)")
		case t.SHA256 != "" && !hexHash.MatchString(t.SHA256):
			v.failf(at+".sha256", "must be 64 lower-case hex digits (slipway token create prints it)")
		case t.Secret != nil:
			v.ref(at+".secret", *t.Secret)
		}
	}
}

// grants checks what a repository's runs are granted: secrets (each from
// exactly one source, for valid refs and events), apps (each bound to one
// repository only), GitOps paths and clone sources.
func (v *checker) grants(at string, r Repository, apps map[string]string) {
	secrets := map[string]bool{}
	for i, g := range r.Secrets {
		gat := fmt.Sprintf("%s.secrets[%d]", at, i)
		switch {
		case !varName.MatchString(g.Name):
			v.failf(gat+".name", "%q is not a valid secret name (letters, digits, _)", g.Name)
		case secrets[g.Name]:
			v.failf(gat+".name", "secret %s is granted twice; one grant per name (list its branches, tags and events together)", g.Name)
		}
		secrets[g.Name] = true
		v.ref(gat+".from", g.From)
		for field, globs := range map[string][]string{"branches": g.Branches, "tags": g.Tags} {
			for j, p := range globs {
				if _, err := pipeline.CompileGlob(p); err != nil {
					v.failf(fmt.Sprintf("%s.%s[%d]", gat, field, j), "%v", err)
				}
			}
		}
		for j, e := range g.Events {
			if !slices.Contains([]string{pipeline.EventPush, pipeline.EventTag, pipeline.EventSchedule, pipeline.EventManual}, e) {
				v.failf(fmt.Sprintf("%s.events[%d]", gat, j), "%q is not one of push, tag, schedule, manual", e)
			}
		}
	}
	for i, a := range r.Apps {
		aat := fmt.Sprintf("%s.apps[%d]", at, i)
		switch other, dup := apps[a.Name]; {
		case !appLabel.MatchString(a.Name):
			v.failf(aat+".name", "%q must be lower-case letters, digits and '-', at most 63 characters", a.Name)
		case dup:
			v.failf(aat+".name", "app %s is already bound to repository %s; an app is released from one repository", a.Name, other)
		}
		apps[a.Name] = r.Name
		for j, g := range a.GitOps {
			gat := fmt.Sprintf("%s.gitops[%d]", aat, j)
			v.url(gat+".repo", g.Repo)
			if clean := path.Clean(g.Path); g.Path == "" || path.IsAbs(g.Path) || clean == ".." || strings.HasPrefix(clean, "../") {
				v.failf(gat+".path", "%q must be a relative path inside the config repository (\".\" for all of it)", g.Path)
			}
		}
		for j, name := range a.ArgoCD {
			if !appLabel.MatchString(name) {
				v.failf(fmt.Sprintf("%s.argocd[%d]", aat, j), "%q is not an Argo CD application name", name)
			}
		}
		if a.ArgoCDServer != "" {
			if _, _, err := net.SplitHostPort(a.ArgoCDServer); err != nil || strings.Contains(a.ArgoCDServer, "/") {
				v.failf(aat+".argocdServer", "%q is not host:port", a.ArgoCDServer)
			}
		}
		if a.Prometheus != "" {
			v.httpURL(aat+".prometheus", a.Prometheus)
		}
		for j, n := range a.Notify {
			v.httpURL(fmt.Sprintf("%s.notify[%d]", aat, j), n)
		}
	}
	for j, u := range r.CloneFrom {
		v.url(fmt.Sprintf("%s.cloneFrom[%d]", at, j), u)
	}
	for _, why := range r.Limits.Problems() {
		v.failf(at+".limits", "%s", why)
	}
	pools := map[string]bool{}
	for i, n := range r.NodePools {
		if n.Name == "" || pools[n.Name] {
			v.failf(fmt.Sprintf("%s.nodePools[%d].name", at, i), "a node pool needs a name of its own")
		}
		pools[n.Name] = true
		if len(n.NodeSelector) == 0 && len(n.Tolerations) == 0 {
			v.failf(fmt.Sprintf("%s.nodePools[%d]", at, i), "a node pool names a nodeSelector or tolerations (no pool is where the Pods go by default)")
		}
	}
	for i, sa := range r.ServiceAccounts {
		if !appLabel.MatchString(sa) {
			v.failf(fmt.Sprintf("%s.serviceAccounts[%d]", at, i), "%q is not a service account name", sa)
		}
	}
	for i, p := range r.Images {
		if why := ImagePrefixProblem(p); why != "" {
			v.failf(fmt.Sprintf("%s.images[%d]", at, i), "%s", why)
		}
	}
}

func (v *checker) database(d *DatabaseConfig) {
	if d == nil {
		return
	}
	u, err := url.Parse(d.URL)
	switch {
	case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "":
		// the URL is not repeated: a mistyped one may hold a password
		v.failf("database.url", "must be a postgres://user@host:port/database URL")
	case u.User != nil && func() bool { _, set := u.User.Password(); return set }():
		v.failf("database.url", "holds a password: give it as database.password, {env: VAR} or {file: PATH}")
	case u.Query().Has("password"):
		v.failf("database.url", "holds a password parameter: give it as database.password, {env: VAR} or {file: PATH}")
	}
	if d.Password != nil {
		v.ref("database.password", *d.Password)
	}
	if ttl := time.Duration(d.LeaseTTL); ttl != 0 && (ttl < 3*time.Second || ttl > 10*time.Minute) {
		v.failf("database.leaseTTL", "must be between 3s and 10m (it is renewed every third of it)")
	}
}

// httpURL checks an http(s) address the engine connects to: a scheme, a
// host, and nothing that hides another host (user info).
func (v *checker) httpURL(at, u string) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
		v.failf(at, "%q is not an http:// or https:// URL with a host (and no user)", u)
	}
}

// url refuses what is not a remote repository URL: empty, option-like,
// local paths and file:// or ext:: transports.
func (v *checker) url(at, u string) {
	lower := strings.ToLower(u)
	switch {
	case u == "" || strings.HasPrefix(u, "-"):
		v.failf(at, "a repository URL is required (and may not start with '-')")
	case strings.HasPrefix(lower, "file:") || strings.HasPrefix(lower, "ext::") || strings.HasPrefix(u, "/") || strings.HasPrefix(u, "."):
		v.failf(at, "%q is a local path or a command transport; give an https:// or ssh:// URL", u)
	}
}

// LeaseTTL is how long engines sharing the database lease their runs
// (0 without a database: the engine is alone on its SQLite store).
func (c *Config) LeaseTTL() time.Duration {
	switch {
	case c.Database == nil:
		return 0
	case c.Database.LeaseTTL == 0:
		return DefaultLeaseTTL
	}
	return time.Duration(c.Database.LeaseTTL)
}

// DatabasePassword reads the PostgreSQL password the config references
// ("" when it references none: the server trusts the client, or a
// ~/.pgpass or certificate authenticates it).
func (c *Config) DatabasePassword(lookupEnv func(string) (string, bool)) (string, error) {
	if c.Database == nil || c.Database.Password == nil {
		return "", nil
	}
	return c.ReadSecret("database password", *c.Database.Password, lookupEnv)
}

// beside makes a path relative to the config file absolute.
func (c *Config) beside(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(c.file), path)
}

// ReadSecret reads a secret the config references (a file relative to the
// config); what names it in the error.
func (c *Config) ReadSecret(what string, r pipeline.SecretRef, lookupEnv func(string) (string, bool)) (string, error) {
	if r.File != "" {
		r.File = c.beside(r.File)
	}
	v, err := r.Read(lookupEnv)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}
