package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/server/view"
)

// newReleaseCmds are promote, abort, pause and resume: commands to the
// release of an app in flight.
func newReleaseCmds() []*cobra.Command {
	short := map[release.Command]string{
		release.Promote: "Let an app's release go on past its gate (--full: straight to 100%, never past a failing analysis)",
		release.Abort:   "Roll back an app's release in flight",
		release.Pause:   "Hold an app's release at its current weight",
		release.Resume:  "Let a paused release go on",
	}
	var cmds []*cobra.Command
	for _, name := range []release.Command{release.Promote, release.Abort, release.Pause, release.Resume} {
		var (
			f      clientFlags
			full   bool
			reason string
		)
		cmd := &cobra.Command{
			Use:   string(name) + " APP",
			Short: short[name],
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client()
				if err != nil {
					return err
				}
				body := map[string]any{}
				if full {
					body["full"] = true
				}
				if reason != "" {
					body["reason"] = reason
				}
				var out map[string]any
				if err := c.do(cmd.Context(), "POST", "/api/v1/apps/"+url.PathEscape(args[0])+"/"+string(name), body, &out); err != nil {
					return err
				}
				if c.json {
					return printJSON(cmd.OutOrStdout(), out)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s sent to the release of %s (run %v, %v at %v%%)\n", out["command"], args[0], out["run"], out["state"], out["weight"])
				return nil
			},
		}
		f.register(cmd)
		switch name {
		case release.Promote:
			cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps (the current analysis must not be failing)")
		case release.Abort:
			cmd.Flags().StringVar(&reason, "reason", "", "why, for the rollback record")
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

func newRollbacksCmd() *cobra.Command {
	var (
		f     clientFlags
		app   string
		since time.Duration
		limit int
	)
	cmd := &cobra.Command{
		Use:   "rollbacks",
		Short: "List rollbacks, newest first: when, which version, why; `rollbacks show ID` explains one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if since < 0 {
				return exitCode{code: 2, err: fmt.Errorf("--since %s: must be positive", since)}
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if app != "" {
				q.Set("app", app)
			}
			if since > 0 {
				q.Set("since", since.String())
			}
			var out []view.RollbackView
			if err := c.do(cmd.Context(), "GET", "/api/v1/rollbacks?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAPP\tRUN\tWHEN\tDIGEST\tTRIGGER\tWHAT")
			for _, r := range out {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%.19s\t%s\t%s\n", r.ID, r.App, r.Run, ago(&r.DetectedAt), r.Digest, r.Trigger, r.Summary())
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&app, "app", "", "only rollbacks of this app")
	cmd.Flags().DurationVar(&since, "since", 0, "only rollbacks detected within this long (e.g. 24h)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (1-500)")
	cmd.AddCommand(newRollbacksShowCmd())
	return cmd
}

func newRollbacksShowCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Explain one rollback: why, the measurements with their numbers, the commits, how fast",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || n <= 0 {
				return exitCode{code: 2, err: fmt.Errorf("rollback ID %q is not a positive number", args[0])}
			}
			var v view.RollbackView
			if err := c.do(cmd.Context(), "GET", "/api/v1/rollbacks/"+strconv.FormatInt(n, 10), nil, &v); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprint(cmd.OutOrStdout(), v.Explain())
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
