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
	"github.com/slipwayci/slipway/stages/fake"
)

// stageKinds is the registry of the stage kinds this binary offers. Each
// real kind is added here, by hand, when it lands.
func stageKinds() (*stages.Registry, error) {
	kinds := stages.NewRegistry()
	if err := kinds.Register("fake", fake.New(nil)); err != nil {
		return nil, err
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
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dataDir, "slipway.db"))
	if err != nil {
		return nil, err
	}
	kinds, err := stageKinds()
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
	return &localEngine{Runner: r, close: st.Close}, nil
}
