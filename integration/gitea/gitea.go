// Package gitea runs a real Gitea — the pinned server `make tools` builds —
// on loopback for tests and the demo: its own data directory and SQLite
// database, an admin made through its CLI, organisations, repositories
// and webhooks made through its API, and the commit statuses it holds
// read back through that API.
package gitea

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/stages/tools"
)

// Admin is the administrator Start makes.
const Admin = "slipway-admin"

// Gitea is a running Gitea.
type Gitea struct {
	URL      string // http://127.0.0.1:PORT
	Token    string // the admin's API token (all scopes)
	Password string // the admin's password
	dir      string
	proc     *procs.Proc
	client   *http.Client
}

// Dir is where the pinned Gitea is installed: the binary and the
// templates and options it reads at run time.
func Dir() string { return filepath.Join(tools.Dir(), "gitea-"+tools.Version("GITEA")) }

// Missing says what Gitea needs that is not installed.
func Missing() []string {
	var out []string
	if tools.Check(filepath.Join(Dir(), "gitea")) != nil {
		out = append(out, filepath.Join(Dir(), "gitea")+" (make tools)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		out = append(out, "git (make tools)")
	}
	return out
}

// Start runs Gitea with its data under dir until Close.
func Start(ctx context.Context, dir string) (*Gitea, error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("gitea: missing %s", strings.Join(m, ", "))
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &Gitea{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Password: "slipway-admin-password", dir: dir,
		client: &http.Client{Timeout: 30 * time.Second}}
	config := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(config, []byte(appIni(dir, port)), 0o600); err != nil {
		return nil, err
	}
	bin := filepath.Join(Dir(), "gitea")
	env := []string{"GITEA_WORK_DIR=" + dir, "GITEA_CUSTOM=" + filepath.Join(dir, "custom"), "USER=root"}
	g.proc, err = procs.Start("gitea", filepath.Join(dir, "gitea.log"), bin, []string{"web", "--config", config}, env)
	if err != nil {
		return nil, err
	}
	if err := g.proc.WaitReady(ctx, 90*time.Second, "serving its API", g.answers); err != nil {
		g.Close()
		return nil, err
	}
	admin := exec.CommandContext(ctx, bin, "admin", "user", "create", "--config", config, "--admin", "--username", Admin,
		"--password", g.Password, "--email", "admin@slipway.test", "--must-change-password=false")
	admin.Env = append(os.Environ(), env...)
	if out, err := admin.CombinedOutput(); err != nil {
		g.Close()
		return nil, fmt.Errorf("gitea: making the admin: %v\n%s", err, out)
	}
	token := exec.CommandContext(ctx, bin, "admin", "user", "generate-access-token", "--config", config, "--username", Admin,
		"--token-name", "slipway", "--scopes", "all", "--raw")
	token.Env = admin.Env
	out, err := token.Output()
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("gitea: making the admin's token: %v", err)
	}
	g.Token = strings.TrimSpace(string(out))
	return g, nil
}

// appIni is Gitea's configuration: loopback only, SQLite, no SSH, no
// registration, no mail, webhooks allowed to reach loopback.
func appIni(dir string, port int) string {
	return fmt.Sprintf(`APP_NAME = slipway local
RUN_MODE = prod
WORK_PATH = %[1]s
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]d
ROOT_URL = http://127.0.0.1:%[2]d/
STATIC_ROOT_PATH = %[3]s
APP_DATA_PATH = %[1]s/data
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = %[1]s/gitea.db

[repository]
ROOT = %[1]s/repositories

[security]
INSTALL_LOCK = true
SECRET_KEY = slipway-local-secret-key
INTERNAL_TOKEN = eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYmYiOjE3MDAwMDAwMDB9.slipway-local-internal-token
PASSWORD_HASH_ALGO = pbkdf2_hi
MIN_PASSWORD_LENGTH = 8
ALLOWED_HOST_LIST = loopback

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
DEFAULT_KEEP_EMAIL_PRIVATE = true

[mailer]
ENABLED = false

[queue]
; In memory: a push's update and its webhook are handed on at once (the
; default LevelDB queues are polled, with a backoff of up to 2 s each).
TYPE = channel

[webhook]
DELIVER_TIMEOUT = 10
SKIP_TLS_VERIFY = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[log]
MODE = console
LEVEL = Warn

[cron]
ENABLED = false

[actions]
ENABLED = false

[packages]
ENABLED = false
`, dir, port, Dir())
}

// answers reports whether Gitea's API answers.
func (g *Gitea) answers() bool {
	resp, err := g.client.Get(g.URL + "/api/v1/version")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Close stops Gitea.
func (g *Gitea) Close() {
	if g.proc != nil {
		g.proc.Stop(10 * time.Second)
	}
}

// Log is the tail of Gitea's log, for failures.
func (g *Gitea) Log() string { return g.proc.Tail(40) }

// API calls Gitea's API as the admin: method, path under /api/v1, a JSON
// body (nil for none), decoding the answer into out (nil to drop it). An
// answer outside 2xx is an error carrying it.
func (g *Gitea) API(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.URL+"/api/v1"+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+g.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("gitea: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gitea: %s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// CreateOrg makes an organisation.
func (g *Gitea) CreateOrg(ctx context.Context, name string) error {
	return g.API(ctx, "POST", "/orgs", map[string]any{"username": name, "visibility": "public"}, nil)
}

// CreateRepo makes an empty repository of org and returns its clone URL
// (http://127.0.0.1:PORT/org/name.git).
func (g *Gitea) CreateRepo(ctx context.Context, org, name string) (string, error) {
	var repo struct {
		CloneURL string `json:"clone_url"`
	}
	err := g.API(ctx, "POST", "/orgs/"+org+"/repos", map[string]any{"name": name, "default_branch": "main", "private": false}, &repo)
	return repo.CloneURL, err
}

// AddWebhook has Gitea POST events (push, create, delete…) of org/repo
// to url, signed with secret, and returns the hook's ID.
func (g *Gitea) AddWebhook(ctx context.Context, org, repo, url, secret string, events ...string) (int64, error) {
	var hook struct {
		ID int64 `json:"id"`
	}
	err := g.API(ctx, "POST", "/repos/"+org+"/"+repo+"/hooks", map[string]any{
		"type": "gitea", "active": true, "events": events, "branch_filter": "*",
		"config": map[string]string{"url": url, "content_type": "json", "secret": secret},
	}, &hook)
	return hook.ID, err
}

// TestWebhook has Gitea send hook id its test delivery (the "Test
// Delivery" button): a push of the default branch's head.
func (g *Gitea) TestWebhook(ctx context.Context, org, repo string, id int64) error {
	return g.API(ctx, "POST", fmt.Sprintf("/repos/%s/%s/hooks/%d/tests", org, repo, id), nil, nil)
}

// Status is a commit status as Gitea holds it.
type Status struct {
	ID          int64  `json:"id"`
	State       string `json:"status"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// Statuses are the statuses of commit sha of org/repo, newest first.
func (g *Gitea) Statuses(ctx context.Context, org, repo, sha string) ([]Status, error) {
	var out []Status
	if err := g.API(ctx, "GET", "/repos/"+org+"/"+repo+"/commits/"+sha+"/statuses?limit=50", nil, &out); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(b.ID, a.ID) })
	return out, nil
}

// CloneURLWithToken is url with the admin's token as its password, for git.
func (g *Gitea) CloneURLWithToken(url string) string {
	return strings.Replace(url, "http://", "http://"+Admin+":"+g.Token+"@", 1)
}
