package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
)

// funcs are the helpers every template may call.
var funcs = template.FuncMap{
	"when":     When,
	"ago":      Ago,
	"duration": Duration,
	"number":   Number,
	"short":    Short,
	"status":   Status,
	"pct":      func(n int) string { return fmt.Sprintf("%d %%", n) },
	"add":      func(a, b int) int { return a + b },
}

// When is a time for people: "2026-12-02 14:03:07 UTC" in a <time>
// element whose datetime attribute is exact; a zero time is "—".
func When(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	u := t.UTC()
	return template.HTML(fmt.Sprintf(`<time datetime="%s">%s</time>`, u.Format(time.RFC3339Nano), u.Format("2006-01-02 15:04:05 UTC")))
}

// Ago is how long before now t was, roughly: "3 min ago".
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return Duration(now.Sub(t)) + " ago"
}

// Duration is d with sensible precision: 840 ms, 4.2 s, 3 min 05 s, 2 h 10 min.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

// Number is a measured value for people (release.FormatNumber).
func Number(v float64) string { return release.FormatNumber(v) }

// Short cuts a commit or digest to n characters (after a sha256: prefix).
func Short(s string, n int) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Status is a status word (a run's, a stage's, a release's, an
// outcome) with a symbol, so it never relies on colour: "✓ succeeded",
// "✗ failed", "● running".
func Status(word any) template.HTML {
	s := fmt.Sprint(word)
	sym, ok := symbols[s]
	if !ok {
		sym = "•"
	}
	return template.HTML(fmt.Sprintf(`<span class="status s-%s"><span aria-hidden="true">%s</span> %s</span>`,
		template.HTMLEscapeString(s), sym, template.HTMLEscapeString(s)))
}

var symbols = map[string]string{
	"succeeded": "✓", "pass": "✓", "started": "✓",
	"failed": "✗", "fail": "✗", "error": "!", "refused": "✗",
	"running": "●", "queued": "…", "pending": "…",
	"inconclusive": "?", "cancelled": "⊘", "skipped": "–", "ignored": "–",
	string(release.Promoted): "✓", string(release.RolledBack): "↩", string(release.RollingBack): "↩",
	string(release.Progressing): "●", string(release.Promoting): "●", string(release.Paused): "‖",
}
