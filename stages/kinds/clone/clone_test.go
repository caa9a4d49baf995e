package clone

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

// fixture is a repository served over real git HTTP with three commits.
type fixture struct {
	srv     *gitserver.Server
	url     string
	commits []string // oldest first
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := gitserver.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url, err := srv.CreateRepo("app")
	if err != nil {
		t.Fatal(err)
	}
	wt, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "wt"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, url: url}
	for _, v := range []string{"one", "two", "three"} {
		sha, err := wt.Commit("main", v, map[string]string{"version.txt": v + "\n", "dir/" + v + ".txt": v})
		if err != nil {
			t.Fatal(err)
		}
		f.commits = append(f.commits, sha)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	return f
}

func runOf(t *testing.T, repo, sha string, secrets map[string]string) (*stages.Run, *bytes.Buffer) {
	var log bytes.Buffer
	return &stages.Run{ID: 1, Stage: "clone", Attempt: 1, Workdir: filepath.Join(t.TempDir(), "work"), Log: &log, Secrets: secrets,
		Trigger: pipeline.RunData{Repo: repo, Ref: "refs/heads/main", SHA: sha}}, &log
}

func clone(t *testing.T, spec pipeline.CloneSpec, run *stages.Run) (stages.Result, error) {
	t.Helper()
	s, err := New(GoGit{}, CLI{})(&spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		return stages.Result{}, err
	}
	return s.Run(context.Background(), run)
}

func TestCloneChecksOutTheExactCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, engine := range []string{"go-git", "git"} {
		for _, tt := range []struct {
			name, sha, want string
		}{
			{"an older commit than the tip", f.commits[1], "two\n"},
			{"the tip", "", "three\n"},
			{"an abbreviated id", f.commits[2][:10], "three\n"},
		} {
			t.Run(engine+"/"+tt.name, func(t *testing.T) {
				run, log := runOf(t, f.url, tt.sha, nil)
				res, err := clone(t, pipeline.CloneSpec{Engine: engine, Depth: 3}, run)
				if err != nil {
					t.Fatalf("%v\n%s", err, log)
				}
				got, _ := os.ReadFile(filepath.Join(run.Workdir, "version.txt"))
				if string(got) != tt.want || res.Outputs["engine"] != engine || !strings.HasPrefix(res.Outputs["sha"], tt.sha) || len(res.Outputs["sha"]) != 40 {
					t.Errorf("version.txt = %q, outputs %v", got, res.Outputs)
				}
				// A retry into the same workdir starts over cleanly.
				if _, err := clone(t, pipeline.CloneSpec{Engine: engine, Depth: 3}, run); err != nil {
					t.Errorf("second clone into the same workdir: %v", err)
				}
			})
		}
	}
}

// When the server refuses to send a commit by its id, go-git fetches the
// branch and finds the commit in its history — or says to increase depth.
// (The git CLI speaks protocol v2, which may fetch any reachable commit.)
func TestCloneFallsBackToTheBranch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cmd := exec.Command("git", "config", "--unset", "uploadpack.allowAnySHA1InWant")
	cmd.Dir = filepath.Join(f.srv.Root, "app.git")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for _, engine := range []string{"go-git", "git"} {
		run, log := runOf(t, f.url, f.commits[1], nil)
		if _, err := clone(t, pipeline.CloneSpec{Engine: engine, Depth: 5}, run); err != nil {
			t.Errorf("%s with depth 5: %v\n%s", engine, err, log)
		}
		run, _ = runOf(t, f.url, f.commits[0], nil)
		_, err := clone(t, pipeline.CloneSpec{Engine: engine, Depth: 1}, run)
		got, _ := os.ReadFile(filepath.Join(run.Workdir, "version.txt"))
		switch {
		case engine == "go-git" && (err == nil || !strings.Contains(err.Error(), "increase clone.depth")):
			t.Errorf("go-git: a commit beyond depth 1: %v", err)
		case engine == "git" && (err != nil || string(got) != "one\n"):
			t.Errorf("git: a commit beyond depth 1: %v, version %q", err, got)
		}
	}
}

func TestCloneWithTokenNeverShowsIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.srv.Token = "tok-3f9a1c-secret"
	for _, engine := range []string{"go-git", "git"} {
		run, log := runOf(t, f.url, f.commits[2], map[string]string{"GIT_TOKEN": f.srv.Token})
		if _, err := clone(t, pipeline.CloneSpec{Engine: engine, Auth: pipeline.Auth{Token: "GIT_TOKEN"}}, run); err != nil {
			t.Errorf("%s with the token: %v", engine, err)
		}
		if strings.Contains(log.String(), f.srv.Token) {
			t.Errorf("%s with the token: the log shows it\n%s", engine, log)
		}
		run, log = runOf(t, f.url, f.commits[2], map[string]string{"GIT_TOKEN": "wrong-token-value"})
		_, err := clone(t, pipeline.CloneSpec{Engine: engine, Auth: pipeline.Auth{Token: "GIT_TOKEN"}}, run)
		if err == nil || strings.Contains(err.Error(), "wrong-token-value") || strings.Contains(log.String(), "wrong-token-value") {
			t.Errorf("%s with a wrong token: %v\n%s", engine, err, log)
		}
		withCreds := strings.Replace(f.url, "http://", "http://user:url-secret-99@", 1)
		run, log = runOf(t, withCreds+"x", "", nil)
		_, err = clone(t, pipeline.CloneSpec{Engine: engine}, run)
		if err == nil || strings.Contains(err.Error(), "url-secret-99") || strings.Contains(log.String(), "url-secret-99") {
			t.Errorf("%s: credentials in the URL leaked: %v\n%s", engine, err, log)
		}
	}
}

func TestCloneRefusesHostileInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		repo, ref, sha, want string
	}{
		{"--upload-pack=touch /tmp/pwned", "refs/heads/main", "", "looks like a command-line flag"},
		{"ext::sh -c touch% /tmp/pwned", "refs/heads/main", "", "transport that runs commands"},
		{"https://example.com/x.git?--upload-pack=evil", "refs/heads/main", "", "carries a git option"},
		{"https://example.com/x.git", "--output=/etc/passwd", "", "not a valid git ref"},
		{"https://example.com/x.git", "refs/heads/main", "HEAD~1", "not a commit id"},
		{"", "refs/heads/main", "", "set clone.repo"},
	}
	for _, tt := range tests {
		run, _ := runOf(t, tt.repo, tt.sha, nil)
		run.Trigger.Ref = tt.ref
		_, err := clone(t, pipeline.CloneSpec{}, run)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("clone of %q at %q %q: %v, want %q", tt.repo, tt.ref, tt.sha, err, tt.want)
		}
	}
}

func TestAutoEnginePicksTheCLIWhereGitIsInstalled(t *testing.T) {
	t.Parallel()
	installed := func(string) (string, error) { return "/usr/bin/git", nil }
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	for _, tt := range []struct {
		spec     pipeline.CloneSpec
		lookPath func(string) (string, error)
		want     string
	}{
		{pipeline.CloneSpec{}, installed, "git"},
		{pipeline.CloneSpec{Depth: -1}, installed, "git"},
		{pipeline.CloneSpec{Engine: "auto"}, missing, "go-git"},
		{pipeline.CloneSpec{Engine: "go-git"}, installed, "go-git"},
		{pipeline.CloneSpec{Engine: "git"}, missing, "git"},
	} {
		if got := (&Stage{spec: tt.spec, lookPath: tt.lookPath}).engine(); got != tt.want {
			t.Errorf("engine(%+v) = %s, want %s", tt.spec, got, tt.want)
		}
	}
}

func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir, "-c", "protocol.file.allow=always", "-c", "user.name=Test", "-c", "user.email=test@localhost"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Credentials go to the repository's own host only: a submodule on
// another server is fetched without them (and the log says so); a
// submodule on this machine's disk is refused.
func TestSubmodulesGetNoCredentialsElsewhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.srv.Token = "tok-for-app-only"
	other, err := gitserver.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	libURL, _ := other.CreateRepo("lib")
	lib, _ := gitserver.Clone(libURL, filepath.Join(t.TempDir(), "lib"))
	if _, err := lib.Commit("main", "lib", map[string]string{"lib.txt": "lib"}); err != nil {
		t.Fatal(err)
	}
	if err := lib.Push("main"); err != nil {
		t.Fatal(err)
	}
	wtDir := filepath.Join(t.TempDir(), "wt")
	tokURL := strings.Replace(f.url, "http://", "http://x:"+f.srv.Token+"@", 1)
	wt, _ := gitserver.Clone(tokURL, wtDir)
	gitCLI(t, wtDir, "checkout", "-q", "main")
	gitCLI(t, wtDir, "submodule", "add", "-q", libURL, "lib")
	sha, err := wt.Commit("main", "with a submodule elsewhere", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{"go-git", "git"} {
		run, log := runOf(t, f.url, sha, map[string]string{"GIT_TOKEN": f.srv.Token})
		_, err := clone(t, pipeline.CloneSpec{Engine: engine, Submodules: true, Auth: pipeline.Auth{Token: "GIT_TOKEN"}}, run)
		if err != nil {
			t.Fatalf("%s: %v\n%s", engine, err, log)
		}
		if b, err := os.ReadFile(filepath.Join(run.Workdir, "lib", "lib.txt")); err != nil || string(b) != "lib" {
			t.Errorf("%s: submodule not checked out: %v", engine, err)
		}
		for _, a := range other.Authorizations() {
			if a != "" {
				t.Errorf("%s: the other server received credentials: %q", engine, a)
			}
		}
		if !strings.Contains(log.String(), "without") {
			t.Errorf("%s: the log does not say the submodule went without credentials:\n%s", engine, log)
		}
	}

	// A submodule whose URL is a path on this machine.
	secretRepo := filepath.Join(t.TempDir(), "private")
	gitCLI(t, filepath.Dir(secretRepo), "init", "-q", secretRepo)
	gitCLI(t, secretRepo, "commit", "-q", "--allow-empty", "-m", "private")
	gitCLI(t, wtDir, "submodule", "add", "-q", "file://"+secretRepo, "private")
	sha, _ = wt.Commit("main", "with a local submodule", nil)
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{"go-git", "git"} {
		run, log := runOf(t, f.url, sha, map[string]string{"GIT_TOKEN": f.srv.Token})
		_, err := clone(t, pipeline.CloneSpec{Engine: engine, Submodules: true, Auth: pipeline.Auth{Token: "GIT_TOKEN"}}, run)
		if err == nil {
			t.Errorf("%s: a file:// submodule was cloned\n%s", engine, log)
		}
	}
	for _, repo := range []string{"file://" + secretRepo, secretRepo, "../private"} {
		run, _ := runOf(t, f.url, "", nil)
		if _, err := clone(t, pipeline.CloneSpec{Repo: repo}, run); err == nil || !strings.Contains(err.Error(), "local path") {
			t.Errorf("clone.repo %q: %v", repo, err)
		}
	}
}

// A run that may fetch only some repositories (a pipeline read from a
// repository: itself and cloneFrom) fetches no other as a submodule, on
// its own host (where the clone's token would go) or not, absolute or
// relative; an allowed submodule is checked out, with its own.
func TestSubmodulesObeyWhatTheRunMayFetch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	repo := func(name string, files map[string]string) string {
		u, err := f.srv.CreateRepo(name)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := gitserver.Clone(u, filepath.Join(t.TempDir(), name))
		if _, err := w.Commit("main", name, files); err != nil {
			t.Fatal(err)
		}
		if err := w.Push("main"); err != nil {
			t.Fatal(err)
		}
		return u
	}
	sharedURL := repo("shared", map[string]string{"shared.txt": "shared"})
	privateURL := repo("private", map[string]string{"private.txt": "another team's"})
	wtDir := filepath.Join(t.TempDir(), "wt")
	wt, _ := gitserver.Clone(f.url, wtDir)
	gitCLI(t, wtDir, "checkout", "-q", "main")
	gitCLI(t, wtDir, "submodule", "add", "-q", sharedURL, "shared")
	allowed, err := wt.Commit("main", "an allowed submodule", nil)
	if err != nil {
		t.Fatal(err)
	}
	gitCLI(t, wtDir, "submodule", "add", "-q", privateURL, "private")
	absolute, _ := wt.Commit("main", "another team's repository, by URL", nil)
	gitCLI(t, wtDir, "config", "--file", ".gitmodules", "submodule.private.url", "../private")
	relative, _ := wt.Commit("main", "another team's repository, relative", map[string]string{})
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	f.srv.Token = "tok-for-every-repository-of-the-host"
	mayFetch := func(u string) bool { return u == f.url || u == sharedURL }
	secrets := map[string]string{"GIT_TOKEN": f.srv.Token}
	for _, engine := range []string{"go-git", "git"} {
		run, log := runOf(t, f.url, allowed, secrets)
		run.MayFetch = mayFetch
		if _, err := clone(t, pipeline.CloneSpec{Engine: engine, Submodules: true, Auth: pipeline.Auth{Token: "GIT_TOKEN"}}, run); err != nil {
			t.Fatalf("%s: an allowed submodule: %v\n%s", engine, err, log)
		}
		if b, err := os.ReadFile(filepath.Join(run.Workdir, "shared", "shared.txt")); err != nil || string(b) != "shared" {
			t.Errorf("%s: the allowed submodule is not checked out: %v", engine, err)
		}
		for _, sha := range []string{absolute, relative} {
			run, log := runOf(t, f.url, sha, secrets)
			run.MayFetch = mayFetch
			_, err := clone(t, pipeline.CloneSpec{Engine: engine, Submodules: true, Auth: pipeline.Auth{Token: "GIT_TOKEN"}}, run)
			if err == nil || !strings.Contains(err.Error(), "submodule private is") || !strings.Contains(err.Error(), "fetches only the repository itself or what the engine config's cloneFrom lists") {
				if engine == "go-git" && sha == relative && err != nil && strings.Contains(err.Error(), "local path") {
					continue // go-git refuses every relative URL
				}
				t.Errorf("%s, commit %s: %v, want the submodule refused\n%s", engine, sha[:7], err, log)
			}
			if _, err := os.Stat(filepath.Join(run.Workdir, "private", "private.txt")); err == nil {
				t.Errorf("%s: another team's repository was checked out", engine)
			}
		}
	}
}

// git runs with a private empty HOME: a .gitconfig wherever HOME used to
// point (the shared temp dir) configures nothing, so its hooks never run.
func TestCLIGitIsHermetic(t *testing.T) {
	f := newFixture(t)
	shared := t.TempDir()
	t.Setenv("TMPDIR", shared)
	pwned := filepath.Join(shared, "pwned")
	hooks := filepath.Join(shared, "hooks")
	os.MkdirAll(hooks, 0o755)
	os.WriteFile(filepath.Join(hooks, "post-checkout"), []byte("#!/bin/sh\ntouch "+pwned+"\n"), 0o755)
	os.WriteFile(filepath.Join(shared, ".gitconfig"), []byte("[core]\n\thooksPath = "+hooks+"\n"), 0o644)
	run, log := runOf(t, f.url, f.commits[2], nil)
	if _, err := clone(t, pipeline.CloneSpec{Engine: "git"}, run); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a hook from a shared .gitconfig ran during the clone")
	}
}
