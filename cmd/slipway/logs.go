package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/stages/retry"
)

func newLogsCmd() *cobra.Command {
	var (
		f           clientFlags
		follow, raw bool
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
			printer := newLogPrinter(cmd.OutOrStdout())
			printer.raw = raw
			print := printer.line
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
					Lines []view.LogLineView `json:"lines"`
					Next  int64              `json:"next"`
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
	cmd.Flags().BoolVar(&raw, "raw", false, "print log text as it is, control characters (terminal escapes) included; by default they are shown escaped")
	return cmd
}

func lineOf(l view.LogLineView) store.LogLine {
	return store.LogLine{Seq: l.Seq, Stage: l.Stage, Attempt: l.Attempt, Time: l.Time, Text: l.Text}
}

// followLogs reads the engine's Server-Sent Events until the end event,
// which it reports on endw; it returns the run's final status. A stream
// that breaks off (the engine restarted, a proxy timed out) is reopened
// with Last-Event-ID, so no line is lost or printed twice; it gives up
// after maxReconnects attempts in a row that brought nothing.
func followLogs(ctx context.Context, c *client, id string, print func(store.LogLine) error, endw io.Writer) (string, error) {
	f := &follower{c: c, id: id, print: print, endw: endw}
	b := reconnectBackoff()
	for failures := 0; ; {
		status, err := f.stream(ctx)
		if err == nil {
			return status, nil
		}
		var broken *streamBroken
		if !errors.As(err, &broken) || ctx.Err() != nil {
			return "", err
		}
		if f.progressed {
			failures, b = 0, reconnectBackoff()
		}
		if failures++; failures > maxReconnects {
			return "", fmt.Errorf("following run %s: gave up after %d reconnects: %w", id, maxReconnects, broken.err)
		}
		wait := b.Step()
		fmt.Fprintf(endw, "slipway: the log stream broke off (%v); reconnecting in %s after line %s\n", broken.err, wait, cmp.Or(f.lastID, "0"))
		if err := retry.Sleep(ctx, wait); err != nil {
			return "", err
		}
	}
}

// maxReconnects bounds the reconnections in a row that bring no line.
const maxReconnects = 8

func reconnectBackoff() wait.Backoff {
	return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Cap: 10 * time.Second, Steps: math.MaxInt32}
}

// follower is one live log read, across reconnections.
type follower struct {
	c          *client
	id         string
	print      func(store.LogLine) error
	endw       io.Writer
	lastID     string // the id of the last event printed
	progressed bool   // the last stream brought at least one event
}

// streamBroken is a stream that ended, or could not start, for a reason
// a reconnection may cure.
type streamBroken struct{ err error }

func (e *streamBroken) Error() string { return e.err.Error() }
func (e *streamBroken) Unwrap() error { return e.err }

// stream reads one connection's events; it returns the run's status at
// the end event.
func (f *follower) stream(ctx context.Context) (string, error) {
	f.progressed = false
	header := http.Header{}
	if f.lastID != "" {
		header.Set("Last-Event-ID", f.lastID)
	}
	resp, err := f.c.sendWith(ctx, "GET", "/api/v1/runs/"+f.id+"/logs?follow=1", nil, header)
	var api *apiError
	switch {
	case errors.As(err, &api) && (api.status >= 500 || api.status == http.StatusTooManyRequests):
		return "", &streamBroken{err}
	case errors.As(err, &api):
		return "", err // refused for good: unknown run, bad token
	case err != nil:
		return "", &streamBroken{err} // the engine is not reachable (yet)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	event, id := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: ") && event == "log":
			var l view.LogLineView
			if err := json.Unmarshal([]byte(line[len("data: "):]), &l); err != nil {
				return "", fmt.Errorf("reading the log stream: %w", err)
			}
			if err := f.print(lineOf(l)); err != nil {
				return "", err
			}
			f.lastID, f.progressed = id, true
		case strings.HasPrefix(line, "data: ") && event == "end":
			var end struct{ Status, Reason string }
			json.Unmarshal([]byte(line[len("data: "):]), &end)
			fmt.Fprintf(f.endw, "run %s %s %s\n", f.id, end.Status, end.Reason)
			return end.Status, nil
		case line == "":
			event, id = "", ""
		}
	}
	if err := sc.Err(); err != nil {
		return "", &streamBroken{fmt.Errorf("reading the log stream: %w", err)}
	}
	return "", &streamBroken{errors.New("the stream ended before the run did")}
}
