package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newFenceCmd is the first init container of a stage's Pod when the
// engine asks for it (SLIPWAY_POD_FENCE): it waits until an address the
// build namespace's NetworkPolicies refuse stops answering — until they
// hold for this Pod — so that no pushed command runs before them. A
// NetworkPolicy agent puts a new Pod's rules in place a moment after it
// starts (0.2–0.3 s measured with kube-router).
func newFenceCmd() *cobra.Command {
	var refused string
	var within time.Duration
	cmd := &cobra.Command{
		Use:    "fence --refused HOST:PORT|api-server [--within 30s]",
		Short:  "Wait until this Pod's NetworkPolicies hold (an init container of a stage's Pod)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr := refused
			if addr == "api-server" { // the kubernetes Service, which every Pod is told of
				addr = net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
			}
			if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
				return fmt.Errorf("--refused %q: not HOST:PORT or api-server", refused)
			}
			took, err := awaitFence(cmd.Context(), addr, within)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "slipway: this Pod's NetworkPolicies hold: %s refused after %s\n", addr, took.Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&refused, "refused", "", "an address the Pod's NetworkPolicies refuse, or api-server")
	cmd.Flags().DurationVar(&within, "within", 30*time.Second, "how long the policies may take")
	return cmd
}

// awaitFence connects to addr every 100 ms until a connection fails
// (refused, or no answer within a second) and returns how long that took;
// an address that still answers after within is an error.
func awaitFence(ctx context.Context, addr string, within time.Duration) (time.Duration, error) {
	start := time.Now()
	d := net.Dialer{Timeout: time.Second}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return time.Since(start), nil
		}
		c.Close()
		if time.Since(start) >= within {
			return 0, fmt.Errorf("%s still answers this Pod after %s: the build namespace's NetworkPolicies are not in force (is a network plugin enforcing them, and does the policy refuse %s?)", addr, within, addr)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
