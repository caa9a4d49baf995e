package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
)

// runFlags are the flags of `slipway run`.
type runFlags struct {
	workdir string
	ref     string
	sha     string
	data    string
	params  []string
	verbose bool
}

func (f *runFlags) register(cmd *cobra.Command, dataDefault string) {
	cmd.Flags().StringVar(&f.workdir, "workdir", "", "directory the stages run in (default: a fresh one under the data directory)")
	cmd.Flags().StringVar(&f.ref, "ref", "refs/heads/main", "git ref the run is for: a branch name, refs/heads/… or refs/tags/…")
	cmd.Flags().StringVar(&f.sha, "sha", "", "commit SHA the run is for")
	cmd.Flags().StringVar(&f.data, "data", dataDefault, "data directory: the run database and work directories")
	cmd.Flags().StringArrayVarP(&f.params, "param", "p", nil, "parameter NAME=VALUE for the run (repeatable)")
	cmd.Flags().BoolVar(&f.verbose, "verbose", false, "print the engine's own logs")
}

// trigger builds the manual trigger the flags describe.
func (f *runFlags) trigger(p *pipeline.Pipeline) (store.Trigger, error) {
	ref, err := pipeline.NormalizeRef(f.ref, "main")
	if err != nil {
		return store.Trigger{}, fmt.Errorf("--ref: %w", err)
	}
	if f.sha != "" && !pipeline.IsCommitID(f.sha) {
		return store.Trigger{}, fmt.Errorf("--sha %q is not a hexadecimal commit id", f.sha)
	}
	params, err := parseParams(f.params, p)
	if err != nil {
		return store.Trigger{}, err
	}
	actor := os.Getenv("USER")
	if actor == "" {
		actor = "local"
	}
	return store.Trigger{Event: pipeline.EventManual, Ref: ref, SHA: f.sha, Actor: actor, Params: params}, nil
}

// parseParams checks NAME=VALUE pairs against the pipeline's declared
// manual parameters and fills in defaults.
func parseParams(pairs []string, p *pipeline.Pipeline) (map[string]string, error) {
	given := map[string]string{}
	for _, kv := range pairs {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--param %q: write NAME=VALUE", kv)
		}
		given[name] = value
	}
	params, err := p.ManualParams(given)
	if err != nil {
		return nil, fmt.Errorf("--param: %w", err)
	}
	return params, nil
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a pipeline here, streaming its logs; exit 0 only if it succeeds",
		Long: `Run a pipeline locally through the same runner and store as the engine.
Stage logs stream with timestamps; a summary table follows. Ctrl-C cancels
the run (its stages still clean up). Runs left behind by a crashed engine in
the same data directory are resumed first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPipeline(args[0])
			if err != nil {
				return err
			}
			return runLocally(cmd.Context(), p, &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, ".slipway")
	return cmd
}

// runLocally submits p, executes the queue until p's run has finished,
// printing its logs and summary, and maps its status to an exit code.
func runLocally(ctx context.Context, p *pipeline.Pipeline, f *runFlags, stdout, stderr io.Writer) error {
	trig, err := f.trigger(p)
	if err != nil {
		return exitCode{code: 2, err: err}
	}
	if f.workdir != "" {
		if f.workdir, err = filepath.Abs(f.workdir); err != nil {
			return err
		}
	}
	eng, err := openLocalEngine(ctx, f.data, stderr, f.verbose)
	if err != nil {
		return err
	}
	defer eng.close()
	run, _, err := eng.Submit(ctx, runner.Request{Pipeline: p, Trigger: trig, Workdir: f.workdir})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %d of %s (%s %s) queued\n", run.ID, run.Pipeline, trig.Event, trig.Ref)
	// The engine keeps going after Ctrl-C until the run is cancelled and
	// cleaned up; only then does it stop.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	drained := make(chan error, 1)
	go func() { drained <- eng.Drain(engineCtx) }()
	go func() {
		select {
		case <-engineCtx.Done():
			return
		case <-ctx.Done():
		}
		if err := eng.Cancel(engineCtx, run.ID, "interrupted (Ctrl-C)"); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "slipway:", err)
		}
	}()
	printer := newLogPrinter(stdout)
	if err := eng.Follow(engineCtx, run.ID, 0, printer.line); err != nil {
		return err
	}
	if err := <-drained; err != nil {
		return err
	}
	final, err := eng.Store().GetRun(engineCtx, run.ID)
	if err != nil {
		return err
	}
	if err := printSummary(engineCtx, stdout, eng.Store(), final); err != nil {
		return err
	}
	if final.Status != store.RunSucceeded {
		return exitCode{code: 1}
	}
	return nil
}

func newRecoverCmd() *cobra.Command {
	var (
		data    string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Finish the runs a stopped or crashed engine left in a data directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			eng, err := openLocalEngine(ctx, data, cmd.ErrOrStderr(), verbose)
			if err != nil {
				return err
			}
			defer eng.close()
			queued, err := eng.Store().ListRuns(ctx, store.RunFilter{Status: []store.RunStatus{store.RunQueued}, Limit: 10000})
			if err != nil {
				return err
			}
			if err := eng.Drain(ctx); err != nil {
				return err
			}
			failed := 0
			for i := len(queued) - 1; i >= 0; i-- {
				run, err := eng.Store().GetRun(ctx, queued[i].ID)
				if err != nil {
					return err
				}
				if err := printSummary(ctx, cmd.OutOrStdout(), eng.Store(), run); err != nil {
					return err
				}
				if run.Status != store.RunSucceeded {
					failed++
				}
			}
			if failed > 0 {
				return exitCode{code: 1, err: fmt.Errorf("%d of %d resumed runs did not succeed", failed, len(queued))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", ".slipway", "data directory")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "print the engine's own logs")
	return cmd
}
