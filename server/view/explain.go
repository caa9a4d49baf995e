package view

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
)

// Summary is a rollback in one line, with the numbers: "success-rate 71.2
// < min 99 at 10% weight, 2 of 2 failures; traffic back to stable in 4.1s".
func (v RollbackView) Summary() string {
	ev := v.Evidence
	what := v.Reason
	switch ms := ev.Detail.Measurements; {
	case len(ms) > 0:
		last := ms[len(ms)-1]
		limit := fmt.Sprintf("failureLimit %d", ev.Detail.FailureLimit)
		if last.Outcome == "error" {
			limit = fmt.Sprintf("consecutiveErrorLimit %d", ev.Detail.ConsecutiveErrorLimit)
		}
		what = fmt.Sprintf("%s %s at %d%% weight, %d %s (%s)", last.Metric, OrOutcome(last.Message, last.Outcome), v.Weight, len(ms), plural(len(ms), last.Outcome), limit)
	case v.Trigger == "alert":
		what = fmt.Sprintf("alert %s firing at %d%% weight", v.Actor, v.Weight)
	case v.Trigger == "manual":
		what = fmt.Sprintf("aborted by %s at %d%% weight", OrDash(v.Actor), v.Weight)
	}
	return fmt.Sprintf("%s; traffic back to stable in %s", what, seconds(v.RestoredAt.Sub(v.DetectedAt)))
}

// Explain is a rollback in plain words, for on-call: what, why, the
// evidence with its numbers, the commits, and how fast traffic came back.
func (v RollbackView) Explain() string {
	ev := v.Evidence
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("Rollback %d of %s (run %d), triggered by %s%s at %d%% canary weight", v.ID, v.App, v.Run, v.Trigger, paren(v.Actor), v.Weight)
	w("  %s", v.Summary())
	w("Why: %s", v.Reason)
	for _, m := range ev.Detail.Measurements {
		w("  %s  %-14s %-12s %s", m.At.Local().Format("15:04:05.000"), m.Metric, m.Outcome, OrOutcome(m.Message, release.FormatNumber(m.Value)))
	}
	if name := ev.Detail.Labels["alertname"]; name != "" {
		w("  alert %s firing since %s", name, ev.Detail.StartsAt.Local().Format("2006-01-02 15:04:05"))
		for _, k := range slices.Sorted(maps.Keys(ev.Detail.Annotations)) {
			w("    %s: %s", k, ev.Detail.Annotations[k])
		}
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(ev.Detail.Labels)) {
			labels = append(labels, k+"="+ev.Detail.Labels[k])
		}
		w("    labels: %s", strings.Join(labels, " "))
	}
	w("Release: source %s, image %s", OrDash(short(v.SourceSHA, 12)), OrDash(v.Digest))
	w("Config repo: released in %s, rolled back in %s", OrDash(short(v.ReleaseCommit, 12)), OrDash(short(v.RollbackCommit, 12)))
	w("Detected %s, traffic back on stable %s: %s", v.DetectedAt.Local().Format("15:04:05.000"), v.RestoredAt.Local().Format("15:04:05.000"), seconds(v.RestoredAt.Sub(v.DetectedAt)))
	t := ev.Timings
	if !t.DecidedAt.IsZero() && !t.PushedAt.IsZero() && !t.RestoredAt.IsZero() {
		w("  decision %s, git commit+push %s, Argo CD sync until the route flipped %s",
			seconds(t.DecidedAt.Sub(v.DetectedAt)), seconds(t.PushedAt.Sub(t.DecidedAt)), seconds(t.RestoredAt.Sub(t.PushedAt)))
	}
	if len(v.Measurements) > 0 {
		w("All measurements of the release:")
		for _, m := range v.Measurements {
			w("  %s  step %d at %3d%%  %-14s %-12s %s", m.At.Local().Format("15:04:05.000"), m.Step+1, m.Weight, m.Metric, m.Outcome, OrOutcome(m.Message, release.FormatNumber(m.Value)))
		}
	}
	return b.String()
}

// OrOutcome is msg, or alt when msg is empty.
func OrOutcome(msg, alt string) string {
	if msg == "" {
		return alt
	}
	return msg
}

func plural(n int, outcome string) string {
	switch {
	case outcome == "fail" && n == 1:
		return "failure"
	case outcome == "fail":
		return "failures"
	case n == 1:
		return "error"
	}
	return "errors in a row"
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// OrDash is s, or "-" when s is empty.
func OrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
