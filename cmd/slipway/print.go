package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// logPrinter prints stage log lines with a timestamp and the stage name.
type logPrinter struct {
	w     io.Writer
	width int
}

func newLogPrinter(w io.Writer) *logPrinter { return &logPrinter{w: w, width: 12} }

func (p *logPrinter) line(l store.LogLine) error {
	tag := fmt.Sprintf("%s#%d", l.Stage, l.Attempt)
	p.width = max(p.width, len(tag))
	_, err := fmt.Fprintf(p.w, "%s %-*s │ %s\n", l.Time.Local().Format("15:04:05.000"), p.width, tag, l.Text)
	return err
}

// printSummary prints how a run ended and a table of its stages.
func printSummary(ctx context.Context, w io.Writer, st store.Stages, run *store.Run) error {
	rows, err := st.ListStages(ctx, run.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nrun %d of %s: %s", run.ID, run.Pipeline, strings.ToUpper(string(run.Status)))
	if !run.StartedAt.IsZero() && !run.FinishedAt.IsZero() {
		fmt.Fprintf(w, " in %s", duration(run.StartedAt, run.FinishedAt))
	}
	if run.Reason != "" {
		fmt.Fprintf(w, " — %s", run.Reason)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tKIND\tSTATUS\tATTEMPTS\tDURATION\tDETAIL")
	for _, s := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Kind, s.Status, s.Attempts,
			duration(s.StartedAt, s.FinishedAt), detail(s))
	}
	return tw.Flush()
}

// detail is the error of a stage that did not succeed, or its outputs.
func detail(s *store.Stage) string {
	if s.Error != "" {
		return s.Error
	}
	var parts []string
	for _, k := range sortedKeys(s.Outputs) {
		parts = append(parts, k+"="+s.Outputs[k])
	}
	return strings.Join(parts, " ")
}

func duration(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return "-"
	}
	return to.Sub(from).Round(time.Millisecond).String()
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
