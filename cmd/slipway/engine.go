package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/build"
	"github.com/slipwayci/slipway/stages/kinds/canary"
	"github.com/slipwayci/slipway/stages/kinds/clone"
	"github.com/slipwayci/slipway/stages/kinds/deploy"
	runkind "github.com/slipwayci/slipway/stages/kinds/run"
	"github.com/slipwayci/slipway/stages/kinds/scan"
	"github.com/slipwayci/slipway/stages/pods"
	"github.com/slipwayci/slipway/stages/tools"
)

// stageKinds is the registry of the stage kinds this binary offers, wired
// by hand. The external tools come from the tools cache (stages/tools);
// s says where Trivy's cache and server are, which Prometheus a canary's
// analysis asks when its pipeline names none, the executor image of
// builds run as Pods and which registries on this machine a local build
// may reach; podsRunner (podRunner; nil without a cluster) is where Pods
// run.
func stageKinds(podsRunner *pods.Runner, s settings) (*stages.Registry, error) {
	trivyCache := s.trivyCache
	if trivyCache == "" {
		trivyCache = filepath.Join(tools.Dir(), "trivy-cache")
	}
	kinds := stages.NewRegistry()
	for kind, f := range map[string]stages.Factory{
		"clone": clone.New(clone.GoGit{}, clone.CLI{}),
		"build": build.New(map[string]build.Builder{
			"local":      &build.Local{Executor: tools.Kaniko(), Registries: s.registries},
			"kubernetes": &build.Kubernetes{Pods: podsRunner, Image: s.kanikoImage},
		}),
		"deploy": deploy.New(),
		"canary": canary.New(s.prometheus),
		"run":    runkind.New(&runkind.Local{}, podsRunner),
		"scan": scan.New(&scan.Trivy{Path: tools.Trivy(), CacheDir: trivyCache, Offline: s.trivyOffline,
			Server: s.trivyServer, Token: s.trivyToken}),
	} {
		if err := kinds.Register(kind, f); err != nil {
			return nil, err
		}
	}
	for kind, f := range testKinds {
		if err := kinds.Register(kind, f); err != nil {
			return nil, err
		}
	}
	return kinds, nil
}

// localEngine is a runner over the SQLite store in a data directory.
type localEngine struct {
	*runner.Runner
	close func() error
}

// openLocalEngine opens (creating) the data directory and its database,
// and recovers runs a crashed engine left behind.
func openLocalEngine(ctx context.Context, dataDir string, stderr io.Writer, verbose bool) (*localEngine, error) {
	if err := privateDir(dataDir); err != nil {
		return nil, err
	}
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dataDir, "slipway.db"))
	if err != nil {
		return nil, err
	}
	var s settings // one's own machine: no engine config, and the registries a build names
	if err := s.fromEnv(os.LookupEnv); err != nil {
		st.Close()
		return nil, err
	}
	podsRunner, err := podRunner(s)
	if err != nil {
		st.Close()
		return nil, err
	}
	kinds, err := stageKinds(podsRunner, s)
	if err != nil {
		st.Close()
		return nil, err
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	r, err := runner.New(st, kinds, runner.WithLogger(logger), runner.WithWorkRoot(filepath.Join(dataDir, "work")))
	if err != nil {
		st.Close()
		return nil, err
	}
	resumed, failed, err := r.Recover(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	if resumed+failed > 0 {
		fmt.Fprintf(stderr, "slipway: a previous engine stopped mid-run: %d run(s) resumed, %d failed (%s)\n", resumed, failed, runner.ReasonEngineRestarted)
	}
	if n, err := reapPods(ctx, podsRunner, st); err != nil {
		fmt.Fprintf(stderr, "slipway: reaping stage pods: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "slipway: deleted the pods and secrets of %d stage attempt(s) of runs that had ended\n", n)
	}
	return &localEngine{Runner: r, close: st.Close}, nil
}

// privateDir creates the engine's data directory (its database, the runs'
// work directories) readable by its owner only, and tightens one that
// exists.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("making data directory %s private: %w", dir, err)
	}
	return nil
}
