package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/slipwayci/slipway/integration/pgtest"
)

// startPostgres starts a PostgreSQL server of the test's own and returns
// it with the URL of a new database on it, without its password.
func startPostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv, err := pgtest.Start(context.Background(), pgtest.Options{})
	need(t, !errors.Is(err, pgtest.ErrMissing), "PostgreSQL (Debian's postgresql; make tools)")
	must(t, err)
	t.Cleanup(func() { srv.Stop() })
	dsn, err := srv.CreateDB(context.Background())
	must(t, err)
	return srv, strings.Replace(dsn, ":"+srv.Password+"@", "@", 1)
}

// connectPostgres connects the test to dsn (a URL without its password,
// as startPostgres returns it); closed when the test ends.
func connectPostgres(t *testing.T, srv *pgtest.Server, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), strings.Replace(dsn, "slipway@", "slipway:"+srv.Password+"@", 1))
	must(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// The engine on PostgreSQL: `database:` in its config, the password by
// reference. A run triggered on one engine is read, logs and all, by
// another engine with a different data directory, and it goes on
// numbering runs where the first stopped: the state is in the database.
// A wrong password stops the engine with an error that does not repeat it.
func TestServeOnPostgres(t *testing.T) {
	offNode(t)
	dir := t.TempDir()
	srv, dsn := startPostgres(t)
	writeFile(t, dir, "p.yaml", `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: hello}
on: {manual: {}}
stages:
  - {name: greet, fake: {log: ["hello from {{ .Run.ID }}"]}}
`)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	writeFile(t, dir, "pg-password", srv.Password+"\n")
	config := func(data, password string) string {
		return writeFile(t, dir, data+".yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: %s
database: {url: %q, password: {file: %s}}
repositories:
  - {name: r, url: "https://gitea.test/shop/r.git", forge: gitea, webhookSecret: {file: hook-secret}, pipelines: [{file: p.yaml}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, data, dsn, password))
	}

	engA := startServe(t, config("data-a", "pg-password"))
	env := []string{"--server", engA.url, "--token", "ops-token-value"}
	if out, code := cli(t, append([]string{"trigger", "hello"}, env...)...); code != 0 || !strings.Contains(out, "run 1 of hello queued") {
		t.Fatalf("trigger on engine A: %d\n%s", code, out)
	}
	waitFor(t, "run 1 to succeed on engine A", func() bool {
		out, _ := cli(t, append([]string{"runs", "show", "1"}, env...)...)
		return strings.Contains(out, "succeeded")
	})
	must(t, engA.cmd.Process.Signal(syscall.SIGTERM))
	engA.waitExit(t)

	engB := startServe(t, config("data-b", "pg-password"))
	env = []string{"--server", engB.url, "--token", "ops-token-value"}
	if out, _ := cli(t, append([]string{"logs", "1"}, env...)...); !strings.Contains(out, "hello from 1") {
		t.Errorf("engine B does not show run 1's log:\n%s", out)
	}
	if out, code := cli(t, append([]string{"trigger", "hello"}, env...)...); code != 0 || !strings.Contains(out, "run 2 of hello queued") {
		t.Errorf("trigger on engine B: %d\n%s", code, out)
	}
	waitFor(t, "run 2 to succeed on engine B", func() bool {
		out, _ := cli(t, append([]string{"runs", "show", "2"}, env...)...)
		return strings.Contains(out, "succeeded")
	})
	must(t, engB.cmd.Process.Signal(syscall.SIGTERM))
	engB.waitExit(t)
	for _, data := range []string{"data-a", "data-b"} {
		if _, err := os.Stat(filepath.Join(dir, data, "slipway.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/slipway.db exists (%v): the engine on PostgreSQL wrote SQLite", data, err)
		}
	}
	conn := connectPostgres(t, srv, dsn)
	var runs, audit int
	must(t, conn.QueryRow(context.Background(), `SELECT (SELECT COUNT(*) FROM runs WHERE status = 'succeeded'), (SELECT COUNT(*) FROM audit)`).Scan(&runs, &audit))
	if runs != 2 || audit != 2 {
		t.Errorf("PostgreSQL holds %d succeeded runs and %d audit entries, want 2 and 2", runs, audit)
	}

	writeFile(t, dir, "wrong-password", "hunter2\n")
	bad := startSlipway(t, "serve", "--config", config("data-c", "wrong-password"))
	if code := bad.waitExit(t); code == 0 || !strings.Contains(bad.out.String(), "password authentication failed") ||
		strings.Contains(bad.out.String(), "hunter2") {
		t.Errorf("engine with a wrong database password: exit %d\n%s", code, bad.out.String())
	}
}
