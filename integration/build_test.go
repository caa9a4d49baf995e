package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/runner/store"
)

// buildEnv is the local environment (git server, registry with a busybox
// base image, offline Trivy database) with one repository.
type buildEnv struct {
	*localenv.Env
	reg     *registry.Registry
	repoURL string
	wt      *gitserver.WorkTree
	dir     string
	tmp     string // the engines' TMPDIR (see sandboxes)
}

func newBuildEnv(t *testing.T) *buildEnv {
	t.Helper()
	needBuildTools(t)
	dir := t.TempDir()
	env, err := localenv.Start(context.Background(), dir)
	must(t, err)
	t.Cleanup(env.Close)
	e := &buildEnv{Env: env, reg: env.Registry, dir: dir}
	e.repoURL, err = env.Git.CreateRepo("shop")
	must(t, err)
	e.wt, err = gitserver.Clone(e.repoURL, filepath.Join(dir, "wt"))
	must(t, err)
	return e
}

// commit pushes a Dockerfile that RUNs in the busybox base image and
// copies app; it returns the commit.
func (e *buildEnv) commit(t *testing.T, msg string, app []byte, extra map[string]string) string {
	t.Helper()
	files := map[string]string{"svc/Dockerfile": demoapp.Dockerfile(e.Base), "svc/app": string(app)}
	for k, v := range extra {
		files[k] = v
	}
	sha, err := e.wt.Commit("main", msg, files)
	must(t, err)
	must(t, e.wt.Push("main"))
	return sha
}

func (e *buildEnv) pipeline(t *testing.T, engine, build string) string {
	t.Helper()
	return writeFile(t, e.dir, "pipeline.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: shop}
stages:
  - {name: clone, clone: {repo: %q, engine: %s}}
  - {name: build, build: {%s}}
  - {name: scan, scan: {failOn: [HIGH, CRITICAL], insecure: true, sbom: true}}
`, e.repoURL, engine, build))
}

// sandboxes is the temporary directory of this environment's engines:
// world-searchable and sticky like /tmp, as the build sandbox's mapped
// users must reach it.
func (e *buildEnv) sandboxes(t *testing.T) string {
	t.Helper()
	if e.tmp == "" {
		e.tmp = sandboxTmp(t)
	}
	return e.tmp
}

// sandboxTmp is a temporary directory for engines' sandboxes (their
// TMPDIR), removed when the test ends: world-searchable and sticky like
// /tmp, as the sandbox's mapped users must reach it, and the test's own,
// so that what is left in it is what its engines left.
func sandboxTmp(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "slipway-sandboxes-")
	must(t, err)
	must(t, os.Chmod(dir, 0o777|os.ModeSticky))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// slipwayRun runs `slipway run` with the offline Trivy database.
func (e *buildEnv) slipwayRun(t *testing.T, pipeline, sha string) (string, int) {
	t.Helper()
	cmd := exec.Command(slipwayBin, "run", pipeline, "--data", filepath.Join(e.dir, "data"), "--sha", sha)
	cmd.Env = append(append(os.Environ(), e.TrivyEnv()...), "TMPDIR="+e.sandboxes(t))
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

func appBinary(t testing.TB, vulnerable bool) []byte {
	t.Helper()
	b, err := demoapp.Build(context.Background(), vulnerable)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A push becomes an image: clone at the exact commit over git HTTP, Kaniko
// builds a Dockerfile with RUN from a base image in a real registry, the
// digest is the registry's, and Trivy passes the clean image and fails the
// vulnerable one with the right CVE — its report stored with the run.
func TestCloneBuildScanAgainstRealSystems(t *testing.T) {
	offNode(t)
	e := newBuildEnv(t)
	cleanSHA := e.commit(t, "clean app", appBinary(t, false), nil)
	vulnSHA := e.commit(t, "app with x/text v0.3.6", appBinary(t, true), nil)
	p := e.pipeline(t, "go-git", fmt.Sprintf("context: svc, image: %s/shop/app, insecure: true, cache: true", e.reg.Addr))

	out, code := e.slipwayRun(t, p, cleanSHA)
	if code != 0 {
		t.Fatalf("clean release: exit %d\n%s", code, out)
	}
	for _, want := range []string{"checked out " + cleanSHA, "Running: [/bin/sh -c echo", "pushed " + e.reg.Addr + "/shop/app@sha256:",
		"CRITICAL 0, HIGH 0", "the image passes"} {
		if !strings.Contains(out, want) {
			t.Errorf("clean run output lacks %q:\n%s", want, out)
		}
	}
	// The digest the run recorded is the one the registry serves for the tag.
	st := openStore(t, filepath.Join(e.dir, "data"))
	defer st.Close()
	stages, _ := st.ListStages(context.Background(), 1)
	tag, err := name.NewTag(e.reg.Addr+"/shop/app:"+cleanSHA[:7], name.Insecure)
	must(t, err)
	desc, err := remote.Head(tag)
	must(t, err)
	if stages[1].Outputs["digest"] != desc.Digest.String() || stages[2].Outputs["digest"] != desc.Digest.String() {
		t.Errorf("build digest %s, scan digest %s, registry %s", stages[1].Outputs["digest"], stages[2].Outputs["digest"], desc.Digest)
	}

	out, code = e.slipwayRun(t, p, vulnSHA)
	if code != 1 || !strings.Contains(out, "1 finding(s) at a gated severity (failOn: HIGH, CRITICAL): CVE-2021-38561 (HIGH) in golang.org/x/text v0.3.6, fixed in 0.3.7") {
		t.Fatalf("vulnerable release: exit %d\n%s", code, out)
	}
	arts, err := st.ListArtifacts(context.Background(), 2)
	must(t, err)
	if len(arts) != 2 || arts[1].Name != "trivy-report.json" || arts[0].Name != "sbom.cdx.json" || !strings.HasPrefix(arts[1].Subject, "sha256:") {
		t.Errorf("artifacts of the failed scan = %+v", arts)
	}
	report, err := st.GetArtifact(context.Background(), 2, 2, "trivy-report.json")
	if err != nil || !strings.Contains(string(report.Data), `"VulnerabilityID": "CVE-2021-38561"`) {
		t.Errorf("stored report: %v", err)
	}
	runs, _ := st.ListRuns(context.Background(), store.RunFilter{})
	if len(runs) != 2 || runs[0].Status != store.RunFailed || runs[1].Status != store.RunSucceeded {
		t.Errorf("runs = %+v", runs)
	}
	// Only this test's engines make sandboxes here (other packages' tests,
	// running at the same time, make theirs in the shared temp directory).
	if left, _ := filepath.Glob(filepath.Join(e.sandboxes(t), "slipway-sandboxes", "kaniko-root-*")); len(left) > 0 {
		t.Errorf("build sandboxes left behind: %v", left)
	}
}

// Each bad input ends the run with an error that says what is wrong.
func TestBadBuildInputsFailClearly(t *testing.T) {
	offNode(t)
	e := newBuildEnv(t)
	outside := t.TempDir()
	writeFile(t, outside, "Dockerfile", "FROM scratch\n")
	sha := e.commit(t, "odd layout", []byte("x"), map[string]string{"nodocker/readme.txt": "no Dockerfile here"})
	must(t, os.Symlink(outside, filepath.Join(e.wt.Dir, "escape")))
	sha2, err := e.wt.Commit("main", "symlink out", nil)
	must(t, err)
	must(t, e.wt.Push("main"))
	deadRegistry := "127.0.0.1:9" // discard port: nothing listens
	// go-git keeps symlinks inside the checkout; the git CLI writes them as
	// committed, so the escaping link reaches the build stage's check.
	tests := []struct {
		name, engine, build, sha, want string
	}{
		{"missing Dockerfile", "go-git", fmt.Sprintf("context: nodocker, image: %s/shop/x, insecure: true", e.reg.Addr), sha, "Dockerfile: nodocker/Dockerfile does not exist in the repository"},
		{"context outside the repository", "git", fmt.Sprintf("context: escape, image: %s/shop/x, insecure: true", e.reg.Addr), sha2, "build context: escape leaves the repository"},
		{"registry down", "go-git", fmt.Sprintf("context: svc, image: %s/shop/x, insecure: true", deadRegistry), sha, "kaniko build failed"},
	}
	for _, tt := range tests {
		out, code := e.slipwayRun(t, e.pipeline(t, tt.engine, tt.build), tt.sha)
		if code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: exit %d, want %q in:\n%s", tt.name, code, tt.want, out)
		}
	}
	// Executor missing: a tools directory without Kaniko.
	cmd := exec.Command(slipwayBin, "run", e.pipeline(t, "go-git", fmt.Sprintf("context: svc, image: %s/shop/x, insecure: true", e.reg.Addr)),
		"--data", filepath.Join(e.dir, "data2"), "--sha", sha)
	cmd.Env = append(os.Environ(), "SLIPWAY_TOOLS_DIR="+t.TempDir())
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "kaniko executor") || !strings.Contains(string(out), "make tools") {
		t.Errorf("executor missing:\n%s", out)
	}
}
