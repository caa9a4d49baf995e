// Command slipway is the Slipway release engine: one binary for the
// engine, the local runner and the CLI. Wiring — which stage kinds exist,
// which store is used — is done here, by hand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitCode is an error that carries the process exit status.
type exitCode struct {
	code int
	err  error
}

func (e exitCode) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(execute(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the CLI with args and returns the exit status.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		if ec.err != nil {
			fmt.Fprintln(stderr, "slipway:", ec.err)
		}
		return ec.code
	default:
		fmt.Fprintln(stderr, "slipway:", err)
		return 2
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "slipway",
		Short:         "Slipway takes a commit to production safely, and says what it did and why",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newValidateCmd(), newRunCmd(), newRecoverCmd(), newServeCmd(),
		newRunsCmd(), newLogsCmd(), newTriggerCmd(), newCancelCmd(), newTokenCmd(), newRollbacksCmd(), newCheckoutCmd(), newFenceCmd())
	root.AddCommand(newReleaseCmds()...)
	return root
}
