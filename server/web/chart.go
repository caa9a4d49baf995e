package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Point is one measurement on a chart.
type Point struct {
	At       time.Time
	Value    float64 // NaN: no value (an error, no data)
	Outcome  string  // pass, fail, inconclusive, error
	Decisive bool    // one of the measurements a rollback was decided on
}

// Chart is one metric's measurements over a release, with the limits
// they were held to. The same data is always shown as a table beside it.
type Chart struct {
	Title    string
	Points   []Point
	Min, Max *float64
}

// The drawing area, in SVG user units.
const (
	chartW, chartH             = 640.0, 220.0
	padL, padR, padT, padB     = 60.0, 16.0, 14.0, 34.0
	plotW, plotH               = chartW - padL - padR, chartH - padT - padB
	markerSize                 = 4.0
	thresholdMin, thresholdMax = "min", "max"
)

// SVG draws the chart: the values as a line, min and max as dashed
// threshold lines, and each point by its outcome's shape (a circle for
// pass, a cross for fail, a hollow square for inconclusive, a triangle on
// the axis for error) — never by colour alone. Decisive points are ringed.
func (c Chart) SVG() template.HTML {
	var b strings.Builder
	id := "c-" + slug(c.Title)
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-labelledby="%s-t %s-d" data-points="%d">`, chartW, chartH, id, id, len(c.Points))
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, esc(c.Title), id, esc(c.describe()))
	if len(c.Points) == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="empty">no measurements yet</text></svg>`, chartW/2, chartH/2)
		return template.HTML(b.String())
	}
	lo, hi := c.yRange()
	t0, t1 := c.Points[0].At, c.Points[len(c.Points)-1].At
	x := func(t time.Time) float64 {
		if !t1.After(t0) {
			return padL + plotW/2
		}
		return padL + plotW*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	y := func(v float64) float64 { return padT + plotH*(1-(v-lo)/(hi-lo)) }

	fmt.Fprintf(&b, `<g class="axes"><line x1="%g" y1="%g" x2="%g" y2="%g"/><line x1="%g" y1="%g" x2="%g" y2="%g"/>`,
		padL, padT, padL, padT+plotH, padL, padT+plotH, padL+plotW, padT+plotH)
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="ytick">%s</text>`, padL-6, y(v)+4, Number(v))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" class="xtick">%s</text>`, padL, chartH-10, t0.UTC().Format("15:04:05"))
	if t1.After(t0) {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="xtick end">%s</text>`, padL+plotW, chartH-10, t1.UTC().Format("15:04:05"))
	}
	b.WriteString(`</g>`)

	for _, th := range []struct {
		name string
		v    *float64
	}{{thresholdMin, c.Min}, {thresholdMax, c.Max}} {
		if th.v == nil {
			continue
		}
		yy := y(*th.v)
		fmt.Fprintf(&b, `<g class="threshold %s"><line x1="%g" y1="%.1f" x2="%g" y2="%.1f"/><text x="%g" y="%.1f">%s %s</text></g>`,
			th.name, padL, yy, padL+plotW, yy, padL+plotW-4, yy-4, th.name, Number(*th.v))
	}

	var path strings.Builder
	for _, p := range c.Points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue
		}
		cmd := "L"
		if path.Len() == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f %.1f", cmd, x(p.At), y(p.Value))
	}
	if path.Len() > 0 {
		fmt.Fprintf(&b, `<path class="series" d="%s"/>`, path.String())
	}
	for _, p := range c.Points {
		px, py := x(p.At), padT+plotH
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			py = y(p.Value)
		}
		b.WriteString(marker(p, px, py))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// marker draws one point by its outcome.
func marker(p Point, x, y float64) string {
	s := markerSize
	tip := fmt.Sprintf("<title>%s %s: %s</title>", p.At.UTC().Format("15:04:05"), Number(p.Value), template.HTMLEscapeString(p.Outcome))
	var shape string
	switch p.Outcome {
	case "fail":
		shape = fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f"/>`, x-s, y-s, x+s, y+s, x-s, y+s, x+s, y-s)
	case "inconclusive":
		shape = fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="%g" height="%g"/>`, x-s, y-s, 2*s, 2*s)
	case "error":
		shape = fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fZ"/>`, x, y-s-2, x+s+1, y+s-2, x-s-1, y+s-2)
	default:
		shape = fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="%g"/>`, x, y, s-1)
	}
	ring := ""
	if p.Decisive {
		ring = fmt.Sprintf(`<circle class="decisive" cx="%.1f" cy="%.1f" r="%g"/>`, x, y, 2*s+1)
	}
	return fmt.Sprintf(`<g class="m m-%s">%s%s%s</g>`, esc(p.Outcome), tip, shape, ring)
}

// yRange spans the values and thresholds, with a margin.
func (c Chart) yRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	see := func(v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for _, p := range c.Points {
		see(p.Value)
	}
	for _, t := range []*float64{c.Min, c.Max} {
		if t != nil {
			see(*t)
		}
	}
	if math.IsInf(lo, 1) { // nothing finite
		return 0, 1
	}
	if hi == lo {
		return lo - 1, hi + 1
	}
	m := (hi - lo) * 0.08
	return lo - m, hi + m
}

// describe is the chart in one sentence, for screen readers.
func (c Chart) describe() string {
	n := map[string]int{}
	for _, p := range c.Points {
		n[p.Outcome]++
	}
	s := fmt.Sprintf("%d measurements: %d pass, %d fail, %d inconclusive, %d error", len(c.Points), n["pass"], n["fail"], n["inconclusive"], n["error"])
	if c.Min != nil {
		s += "; min " + Number(*c.Min)
	}
	if c.Max != nil {
		s += "; max " + Number(*c.Max)
	}
	return s + ". The table beside the chart lists every value."
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// slug makes s safe for an element ID.
func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}

// Phase is one part of a rollback's time, from detection to stable.
type Phase struct {
	Name string
	Took time.Duration
}

// TimingBar draws phases as one bar, each part as wide as its share of
// the total and labelled with its name; the list of phases beside it
// carries the same numbers as text.
func TimingBar(phases []Phase) template.HTML {
	var total time.Duration
	for _, p := range phases {
		total += max(p.Took, 0)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="timing-bar" viewBox="0 0 %g 40" role="img" aria-label="%s">`, chartW, esc("timing: "+phaseText(phases)))
	x := 0.0
	for i, p := range phases {
		w := chartW / float64(len(phases))
		if total > 0 {
			w = chartW * float64(max(p.Took, 0)) / float64(total)
		}
		fmt.Fprintf(&b, `<g class="phase p%d"><rect x="%.1f" y="4" width="%.1f" height="20"/><text x="%.1f" y="36">%s</text></g>`,
			i%4, x, w, x+2, esc(p.Name))
		x += w
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func phaseText(phases []Phase) string {
	var parts []string
	for _, p := range phases {
		parts = append(parts, p.Name+" "+Duration(p.Took))
	}
	return strings.Join(parts, ", ")
}
