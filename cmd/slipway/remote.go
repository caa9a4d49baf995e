package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/slipwayci/slipway/server/view"
	"github.com/spf13/cobra"
)

func newRunsCmd() *cobra.Command {
	var (
		f        clientFlags
		pipeline string
		repo     string
		status   []string
		limit    int
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List runs on the engine (newest first); `runs show ID` explains one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if pipeline != "" {
				q.Set("pipeline", pipeline)
			}
			if repo != "" {
				q.Set("repository", repo)
			}
			for _, s := range status {
				q.Add("status", s)
			}
			q.Set("limit", strconv.Itoa(limit))
			var out struct {
				Runs []view.RunView `json:"runs"`
			}
			if err := c.do(cmd.Context(), "GET", "/api/v1/runs?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPIPELINE\tSTATUS\tEVENT\tREF\tSTARTED\tDURATION\tREASON")
			for _, r := range out.Runs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Status, r.Trigger.Event,
					strings.TrimPrefix(r.Trigger.Ref, "refs/heads/"), ago(r.StartedAt), span(r.StartedAt, r.FinishedAt), r.Reason)
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "only runs of this pipeline")
	cmd.Flags().StringVar(&repo, "repository", "", "only runs of pipelines pushed to this repository (its name in the engine config)")
	cmd.Flags().StringSliceVar(&status, "status", nil, "only runs with these statuses")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs (1-500)")
	cmd.AddCommand(newRunsShowCmd())
	return cmd
}

func newRunsShowCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one run: trigger, stages, attempts, timeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.forRun(args[0])
			if err != nil {
				return err
			}
			var r view.RunView
			if err := c.do(cmd.Context(), "GET", "/api/v1/runs/"+id, nil, &r); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "run %d of %s (app %s): %s", r.ID, r.Pipeline, r.App, strings.ToUpper(r.Status))
			if r.Reason != "" {
				fmt.Fprintf(w, " — %s", r.Reason)
			}
			fmt.Fprintf(w, "\ntrigger: %s by %s, ref %s, sha %s\n", r.Trigger.Event, orDash(r.Trigger.Actor), orDash(r.Trigger.Ref), orDash(r.Trigger.SHA))
			if r.Source.Pushed {
				fmt.Fprintf(w, "pipeline: pushed, read from %s\n", r.Source.File)
			} else {
				fmt.Fprintf(w, "pipeline: the operator's %s\n", orDash(r.Source.File))
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nSTAGE\tKIND\tSTATUS\tATTEMPTS\tDURATION\tDETAIL")
			for _, s := range r.Stages {
				detail := s.Error
				if detail == "" {
					detail = strings.Join(outputsList(s.Outputs), " ")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Kind, s.Status, len(s.Attempts), span(s.StartedAt, s.FinishedAt), detail)
			}
			tw.Flush()
			fmt.Fprintln(w, "\ntimeline:")
			for _, e := range r.Events {
				fmt.Fprintf(w, "  %s  %-16s %s\n", e.Time.Local().Format("15:04:05.000"), e.Kind, e.Message)
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func outputsList(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runID checks a run ID argument.
func runID(s string) (string, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return "", exitCode{code: 2, err: fmt.Errorf("run ID %q is not a positive number", s)}
	}
	return strconv.FormatInt(n, 10), nil
}

func newTriggerCmd() *cobra.Command {
	var (
		f      clientFlags
		ref    string
		sha    string
		repo   string
		params []string
	)
	cmd := &cobra.Command{
		Use:   "trigger PIPELINE",
		Short: "Start a run of a pipeline on the engine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			body := map[string]any{"ref": ref, "sha": sha, "repository": repo}
			given := map[string]string{}
			for _, kv := range params {
				name, value, ok := strings.Cut(kv, "=")
				if !ok || name == "" {
					return exitCode{code: 2, err: fmt.Errorf("--param %q: write NAME=VALUE", kv)}
				}
				given[name] = value
			}
			body["params"] = given
			var r view.RunView
			if err := c.do(cmd.Context(), "POST", "/api/v1/pipelines/"+url.PathEscape(args[0])+"/runs", body, &r); err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %d of %s queued (%s)\n", r.ID, r.Pipeline, r.Trigger.Ref)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&ref, "ref", "", "branch or ref to run (default: the repository's branch)")
	cmd.Flags().StringVar(&sha, "sha", "", "commit to run")
	cmd.Flags().StringVar(&repo, "repository", "", "the repository (its name in the engine config) whose pushed pipeline is meant, when several push one of that name")
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "parameter NAME=VALUE (repeatable)")
	return cmd
}

func newCancelCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a run on the engine (its stages still clean up)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.forRun(args[0])
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/runs/"+id+"/cancel", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancel of run %s requested\n", id)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Make API tokens"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME ROLE",
		Short: "Print a new random API token and the config entry holding only its hash",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[1] {
			case "viewer", "release-manager", "admin":
			default:
				return exitCode{code: 2, err: fmt.Errorf("role %q is not one of viewer, release-manager, admin", args[1])}
			}
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return err
			}
			token := "slw_" + base64.RawURLEncoding.EncodeToString(raw)
			sum := sha256.Sum256([]byte(token))
			fmt.Fprintf(cmd.OutOrStdout(), "token (shown once; give it to %s):\n  %s\n\nengine config entry (only the hash is stored):\n  - {name: %s, role: %s, sha256: %s}\n",
				args[0], token, args[0], args[1], hex.EncodeToString(sum[:]))
			return nil
		},
	})
	return cmd
}
