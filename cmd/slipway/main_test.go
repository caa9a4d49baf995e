package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/fake"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writePipeline(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.yaml")
	src := "apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\n" + body
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	t.Parallel()
	code, out, errs := run(t, "validate", "../../configs/examples/order-service.yaml")
	if code != 0 || out != "" || errs != "" {
		t.Errorf("valid file: code %d, stdout %q, stderr %q (want silence)", code, out, errs)
	}
	code, out, _ = run(t, "validate", "-v", "../../configs/examples/order-service.yaml")
	if code != 0 || !strings.Contains(out, "ok — pipeline order-service, 5 stages") {
		t.Errorf("-v: code %d, stdout %q", code, out)
	}
	code, _, errs = run(t, "validate", "../../configs/examples/ci-only.yaml", "../../pipeline/testdata/wrong-types.bad.yaml", "missing.yaml")
	if code != 1 {
		t.Errorf("bad files: exit %d, want 1", code)
	}
	for _, want := range []string{
		"../../pipeline/testdata/wrong-types.bad.yaml:8:14: stages[0].retries: expected a whole number",
		"reading pipeline: open missing.yaml: no such file or directory",
		"2 of 3 files invalid",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if code, _, _ := run(t, "validate"); code != 2 {
		t.Errorf("validate without files: exit %d, want 2 (usage)", code)
	}
}

func TestRunPrintsLogsAndSummaryAndExitsByStatus(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	ok := writePipeline(t, "stages:\n  - {name: hello, fake: {log: ['hello from {{ .Run.Branch }}'], outputs: {answer: '42'}}}\n")
	code, out, errs := run(t, "run", ok, "--data", data, "--ref", "feature/x")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"run 1 of shop (manual refs/heads/feature/x) queued", "hello#1", "│ hello from feature/x", "run 1 of shop: SUCCEEDED", "answer=42"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	bad := writePipeline(t, "stages:\n  - {name: boom, fake: {exitCode: 7}}\n  - {name: never, fake: {}}\n")
	code, out, _ = run(t, "run", bad, "--data", data)
	if code != 1 || !strings.Contains(out, "run 2 of shop: FAILED") || !strings.Contains(out, "fake stage exited with code 7") || !strings.Contains(out, "not run: the run failed") {
		t.Errorf("failing run: exit %d\n%s", code, out)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := writePipeline(t, "on: {manual: {parameters: {env: {required: true}}}}\nstages:\n  - {name: a, fake: {}}\n")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", p, "--data", data, "--ref", "--upload-pack=evil"}, 2, `--ref: ref "--upload-pack=evil" is not a valid git ref`},
		{[]string{"run", p, "--data", data, "--sha", "zzzz"}, 2, `--sha "zzzz" is not a hexadecimal commit id`},
		{[]string{"run", p, "--data", data, "-p", "nope"}, 2, `--param "nope": write NAME=VALUE`},
		{[]string{"run", p, "--data", data, "-p", "other=1"}, 2, "--param: parameter other: the pipeline declares no such parameter"},
		{[]string{"run", p, "--data", data}, 2, "parameter env is required"},
		{[]string{"run", "../../pipeline/testdata/canary.bad.yaml", "--data", data}, 1, "is not a valid pipeline:\n../../pipeline/testdata/canary.bad.yaml:7:15"},
		{[]string{"run", p, "extra", "--data", data}, 2, "accepts 1 arg(s), received 2"},
	}
	for _, tt := range tests {
		code, _, errs := run(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("slipway %v: exit %d, stderr %q; want exit %d with %q", tt.args, code, errs, tt.code, tt.msg)
		}
	}
}

// The Pods' init container refuses what would not fetch one commit of a
// remote repository into one directory, before touching the network.
func TestCheckoutRefusesBadInput(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("a", 40)
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--repo", "--upload-pack=evil", "--sha", sha, "--dir", "/w"}, "looks like a command-line flag"},
		{[]string{"--repo", "/etc", "--sha", sha, "--dir", "/w"}, "is a local path"},
		{[]string{"--repo", "ext::sh -c evil", "--sha", sha, "--dir", "/w"}, "runs commands"},
		{[]string{"--repo", "https://git.example.com/a.git", "--sha", "HEAD", "--dir", "/w"}, `--sha "HEAD" is not a commit id`},
		{[]string{"--repo", "https://git.example.com/a.git", "--sha", sha, "--ref", "--config=x", "--dir", "/w"}, "--ref:"},
		{[]string{"--repo", "https://git.example.com/a.git", "--sha", sha, "--dir", "work"}, "is not an absolute path"},
		{[]string{"--repo", "https://git.example.com/a.git", "--sha", sha, "--dir", "/w", "extra"}, "unknown command"},
	} {
		code, _, errs := run(t, append([]string{"checkout"}, tt.args...)...)
		if code != 2 || !strings.Contains(errs, tt.msg) {
			t.Errorf("slipway checkout %v: exit %d, stderr %q; want %q", tt.args, code, errs, tt.msg)
		}
	}
}

func TestClientCommandsRefuseBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"runs", "show", "abc", "--server", "http://127.0.0.1:1"}, `run ID "abc" is not a positive number`},
		{[]string{"cancel", "-5", "--server", "http://127.0.0.1:1"}, "unknown shorthand flag"},
		{[]string{"runs", "--server", "ftp://x"}, `--server "ftp://x" is not an http(s) URL`},
		{[]string{"runs", "--server", "http://127.0.0.1:1", "-o", "yaml"}, `-o "yaml": use table or json`},
		{[]string{"trigger", "web", "-p", "novalue", "--server", "http://127.0.0.1:1"}, `--param "novalue": write NAME=VALUE`},
		{[]string{"token", "create", "bob", "root"}, `role "root" is not one of`},
		{[]string{"runs", "--server", "http://127.0.0.1:1"}, "reaching the engine at http://127.0.0.1:1"},
		{[]string{"serve", "--config", "../../engineconfig/testdata/bad.yaml"}, "is not a valid engine config"},
		{[]string{"promote", "--server", "http://127.0.0.1:1"}, "accepts 1 arg(s), received 0"},
		{[]string{"abort", "a", "b", "--server", "http://127.0.0.1:1"}, "accepts 1 arg(s), received 2"},
		{[]string{"pause", "shop", "--full", "--server", "http://127.0.0.1:1"}, "unknown flag: --full"},
		{[]string{"promote", "shop", "--server", "http://127.0.0.1:1"}, "reaching the engine at http://127.0.0.1:1"},
		{[]string{"rollbacks", "show", "x", "--server", "http://127.0.0.1:1"}, `rollback ID "x" is not a positive number`},
		{[]string{"rollbacks", "--since", "-1h", "--server", "http://127.0.0.1:1"}, "--since -1h0m0s: must be positive"},
		{[]string{"rollbacks", "--since", "yesterday", "--server", "http://127.0.0.1:1"}, "invalid argument"},
	}
	for _, tt := range tests {
		code, _, errs := run(t, tt.args...)
		if code == 0 || !strings.Contains(errs, tt.msg) {
			t.Errorf("slipway %v: exit %d, stderr %q; want failure with %q", tt.args, code, errs, tt.msg)
		}
	}
}

func TestTokenCreatePrintsTokenAndHash(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, "token", "create", "alice", "release-manager")
	if code != 0 || !strings.Contains(out, "slw_") || !strings.Contains(out, "- {name: alice, role: release-manager, sha256: ") {
		t.Errorf("token create: %d\n%s", code, out)
	}
}

// The unit tests here run pipelines of the fake kind, which only test
// builds register (kinds_fake.go is for binaries built with -tags
// slipway_fake).
func TestMain(m *testing.M) {
	if testKinds == nil {
		testKinds = map[string]stages.Factory{"fake": fake.New(nil)}
	}
	os.Exit(m.Run())
}

// Every kind a pipeline file can name has a factory: the product's kinds
// plus the test kinds make up pipeline.Kinds, and the product binary
// offers all of them but the fake one.
func TestEveryKindIsWired(t *testing.T) {
	t.Parallel()
	kinds, err := stageKinds(nil, settings{})
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds.Kinds(); !slices.Equal(got, pipeline.Kinds) {
		t.Errorf("registered kinds %v, pipeline.Kinds %v", got, pipeline.Kinds)
	}
}

// Each command has a name of its own: `slipway resume APP` is the
// release's command, as the API and the UI name it, and it reaches the
// engine.
func TestCommandNamesAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range newRoot(io.Discard, io.Discard).Commands() {
		for _, name := range append([]string{c.Name()}, c.Aliases...) {
			if seen[name] {
				t.Errorf("two commands are named %q", name)
			}
			seen[name] = true
		}
	}
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Path
		fmt.Fprint(w, `{"command":"resume","run":3,"state":"progressing","weight":25}`)
	}))
	defer srv.Close()
	code, stdout, stderr := run(t, "resume", "shop", "--server", srv.URL, "--token", "t")
	if code != 0 || got != "POST /api/v1/apps/shop/resume" || !strings.Contains(stdout, "resume sent to the release of shop") {
		t.Errorf("slipway resume shop: exit %d, request %q\n%s%s", code, got, stdout, stderr)
	}
}
