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
// A log holds what pushed code printed: unless raw, its control characters
// are shown escaped (\x1b), so no line can move the cursor, retitle the
// terminal or rewrite what was printed before it.
type logPrinter struct {
	w     io.Writer
	width int
	raw   bool
}

func newLogPrinter(w io.Writer) *logPrinter { return &logPrinter{w: w, width: 12} }

func (p *logPrinter) line(l store.LogLine) error {
	tag, text := fmt.Sprintf("%s#%d", l.Stage, l.Attempt), l.Text
	if !p.raw {
		tag, text = escapeControls(tag), escapeControls(text)
	}
	p.width = max(p.width, len(tag))
	_, err := fmt.Fprintf(p.w, "%s %-*s │ %s\n", l.Time.Local().Format("15:04:05.000"), p.width, tag, text)
	return err
}

// escapeControls writes the control characters of s (C0 but tab, DEL, C1)
// as Go escapes; the rest is left as it is.
func escapeControls(s string) string {
	isControl := func(r rune) bool { return (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) }
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
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
		fmt.Fprintf(w, " — %s", escapeControls(run.Reason))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tKIND\tSTATUS\tATTEMPTS\tDURATION\tDETAIL")
	for _, s := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", escapeControls(s.Name), s.Kind, s.Status, s.Attempts,
			duration(s.StartedAt, s.FinishedAt), escapeControls(detail(s)))
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
