package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server"
)

func newLogsCmd() *cobra.Command {
	var (
		f      clientFlags
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a run's logs; -f follows them live until the run ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := f.forRun(args[0])
			if err != nil {
				return err
			}
			print := newLogPrinter(cmd.OutOrStdout()).line
			if c.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				print = func(l store.LogLine) error { return enc.Encode(l) }
			}
			if follow {
				_, err := followLogs(cmd.Context(), c, id, print, cmd.ErrOrStderr())
				return err
			}
			var after int64
			for {
				var page struct {
					Lines []server.LogLineView `json:"lines"`
					Next  int64                `json:"next"`
				}
				if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/runs/%s/logs?after=%d", id, after), nil, &page); err != nil {
					return err
				}
				for _, l := range page.Lines {
					if err := print(lineOf(l)); err != nil {
						return err
					}
				}
				if len(page.Lines) == 0 {
					return nil
				}
				after = page.Next
			}
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the run ends")
	return cmd
}

func lineOf(l server.LogLineView) store.LogLine {
	return store.LogLine{Seq: l.Seq, Stage: l.Stage, Attempt: l.Attempt, Time: l.Time, Text: l.Text}
}

// followLogs reads the engine's Server-Sent Events until the end event,
// which it reports on endw; it returns the run's final status.
func followLogs(ctx context.Context, c *client, id string, print func(store.LogLine) error, endw io.Writer) (string, error) {
	resp, err := c.send(ctx, "GET", "/api/v1/runs/"+id+"/logs?follow=1", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: ") && event == "log":
			var l server.LogLineView
			if err := json.Unmarshal([]byte(line[len("data: "):]), &l); err != nil {
				return "", fmt.Errorf("reading the log stream: %w", err)
			}
			if err := print(lineOf(l)); err != nil {
				return "", err
			}
		case strings.HasPrefix(line, "data: ") && event == "end":
			var end struct{ Status, Reason string }
			json.Unmarshal([]byte(line[len("data: "):]), &end)
			fmt.Fprintf(endw, "run %s %s %s\n", id, end.Status, end.Reason)
			return end.Status, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the log stream: %w", err)
	}
	return "", fmt.Errorf("the log stream ended before the run did")
}
