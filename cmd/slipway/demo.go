package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/tools"
)

//go:embed demo.yaml
var demoPipeline string

func newDemoCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Release a demo service twice on this machine — a good commit and a vulnerable one — and say what happened",
		Long: `Start a git server, a registry and an offline Trivy database on loopback, push a demo
service and run the embedded pipeline for two commits: the first is cloned, built with
Kaniko, scanned clean and released; the second links a vulnerable library and is stopped
by the scan. Needs root (the build sandbox) and ` + "`make tools`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return demo(cmd.Context(), &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, "")
	return cmd
}

// demoPrerequisites says what the demo lacks, in words.
func demoPrerequisites() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the Kaniko build sandbox uses unshare, mount and chroot)")
	}
	for _, t := range []string{tools.Kaniko(), tools.Trivy()} {
		if err := tools.Check(t); err != nil {
			missing = append(missing, err.Error())
		}
	}
	for _, bin := range []string{"git", "docker-registry", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" (make tools)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the demo needs: %s", strings.Join(missing, "; "))
	}
	return nil
}

func demo(ctx context.Context, f *runFlags, out, errw io.Writer) error {
	if err := demoPrerequisites(); err != nil {
		return exitCode{code: 1, err: err}
	}
	var err error
	if f.data == "" {
		if f.data, err = os.MkdirTemp("", "slipway-demo-"); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Slipway demo — data in %s\nstarting a git server, a registry and an offline vulnerability database on loopback…\n", f.data)
	env, err := localenv.Start(ctx, filepath.Join(f.data, "env"))
	if err != nil {
		return err
	}
	defer env.Close()
	for _, kv := range append(env.TrivyEnv(), "SLIPWAY_DEMO_ARGOCD_TOKEN=demo-token-7f3a9c") {
		k, v, _ := strings.Cut(kv, "=")
		if _, set := os.LookupEnv(k); !set || strings.HasPrefix(k, "SLIPWAY_TRIVY") {
			os.Setenv(k, v)
		}
	}
	repo, wt, err := demoRepo(env, f.data)
	if err != nil {
		return err
	}
	src := strings.NewReplacer("__REPO__", repo, "__REGISTRY__", env.Registry.Addr).Replace(demoPipeline)
	p, err := pipeline.Parse("demo.yaml (embedded)", []byte(src))
	if err != nil {
		return fmt.Errorf("the embedded demo pipeline is invalid: %w", err)
	}

	var shas [2]string
	for i, release := range []struct {
		title      string
		vulnerable bool
	}{
		{"a good commit: the service, linking only Go's standard library", false},
		{"a bad commit: the service now links golang.org/x/text v0.3.6", true},
	} {
		fmt.Fprintf(out, "\n== %d. %s\n", i+1, release.title)
		if shas[i], err = demoCommit(ctx, wt, env.Base, release.vulnerable); err != nil {
			return err
		}
		f.sha = shas[i]
		err = runLocally(ctx, p, f, out, errw)
		var ec exitCode
		switch {
		case !release.vulnerable && err != nil:
			return fmt.Errorf("the good release failed: %w", err)
		case release.vulnerable && (!errors.As(err, &ec) || ec.code != 1):
			return fmt.Errorf("the bad release should have been stopped by the scan, got: %v", err)
		}
	}
	good, bad := shas[0], shas[1]
	fmt.Fprintf(out, `
What happened:
  - run 1 cloned commit %.7s over git HTTP, built it with Kaniko in a throw-away sandbox,
    pushed it to the registry at %s, scanned it by digest with Trivy (clean),
    and went on to the deploy and canary stand-ins;
  - run 2 cloned commit %.7s, built and pushed it, and the scan stopped it: CVE-2021-38561
    (HIGH) in golang.org/x/text v0.3.6, fixed in 0.3.7 — nothing after the scan ran;
  - both Trivy reports are stored with their runs, tied to the image digests;
  - the Argo CD token was masked in every stored and printed log;
  - every transition, attempt, log line and report is in %s/slipway.db.
deploy and canary are stand-ins here (kind: fake); the real deploy kind is exercised against
Argo CD by the integration tests, and the demo will use it with the canary kind.
`, good, env.Registry.Addr, bad, f.data)
	return nil
}

// demoRepo creates the demo service's repository and a work tree of it.
func demoRepo(env *localenv.Env, data string) (string, *gitserver.WorkTree, error) {
	repo, err := env.Git.CreateRepo("order-service")
	if err != nil {
		return "", nil, err
	}
	wt, err := gitserver.Clone(repo, filepath.Join(data, "order-service"))
	return repo, wt, err
}

// demoCommit builds the demo service and pushes it as a new commit.
func demoCommit(ctx context.Context, wt *gitserver.WorkTree, base string, vulnerable bool) (string, error) {
	app, err := demoapp.Build(ctx, vulnerable)
	if err != nil {
		return "", err
	}
	msg := "order-service: standard library only"
	if vulnerable {
		msg = "order-service: use golang.org/x/text for languages"
	}
	sha, err := wt.Commit("main", msg, map[string]string{"Dockerfile": demoapp.Dockerfile(base), "app": string(app)})
	if err != nil {
		return "", err
	}
	return sha, wt.Push("main")
}
