package analysis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
)

// Counting from a step's start. Rates over a range (rate(x[1m])) miss a
// series' first sample, so a canary whose 5xx series is born during the
// step is under-counted; reading the counters themselves at the step's
// start and at each check, and taking differences, counts a new series
// from its first request (a series absent at the start counted from 0).

const selector = `reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload=~"{{ .Workload }}"`

// Counter is how a metric counts a workload's requests and its bad ones.
type Counter struct {
	requests, bad string // queries over .Namespace .Workload
	complement    bool   // the bad query counts the good ones: bad = requests − it
}

// Errors counts Istio's requests and 5xx answers (request-success-rate).
func Errors() Counter {
	return Counter{requests: `sum(istio_requests_total{` + selector + `})`,
		bad: `sum(istio_requests_total{` + selector + `,response_code=~"5.."})`}
}

// SlowerThan counts Istio's requests and those slower than d, which must
// be a bound of the duration histogram's buckets (request-duration): the
// bucket le=d counts the requests at most that slow.
func SlowerThan(d time.Duration) Counter {
	le := strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
	return Counter{requests: `sum(istio_request_duration_milliseconds_count{` + selector + `})`,
		bad: `sum(istio_request_duration_milliseconds_bucket{` + selector + `,le="` + le + `"})`, complement: true}
}

// CounterOf is the counter a compared (or counted) metric uses: its own
// requests and bad queries, or a builtin's.
func CounterOf(m pipeline.Metric) Counter {
	switch {
	case m.Requests != "":
		return Counter{requests: m.Requests, bad: m.Bad}
	case m.Builtin == "request-duration":
		return SlowerThan(time.Duration(m.SlowerThan))
	}
	return Errors()
}

// Totals are the counters' values at one moment.
type Totals struct {
	At                        time.Time
	CanaryRequests, CanaryBad float64
	StableRequests, StableBad float64
}

// Queries are the four queries ReadTotals runs for target, as sent:
// canary requests, canary bad, stable requests, stable bad.
func (c Counter) Queries(target Target) ([]string, error) {
	var out []string
	for _, w := range []string{target.Canary, target.Stable} {
		for _, q := range []string{c.requests, c.bad} {
			text, err := render(q, map[string]string{"App": target.App, "Namespace": target.Namespace, "Workload": w})
			if err != nil {
				return nil, fmt.Errorf("rendering the counter query %q: %w", q, err)
			}
			out = append(out, text)
		}
	}
	return out, nil
}

// ReadTotals reads both workloads' counters now. A counter with no
// series yet is 0.
func ReadTotals(ctx context.Context, q Querier, target Target, c Counter) (Totals, error) {
	t := Totals{At: time.Now()}
	dst := []*float64{&t.CanaryRequests, &t.CanaryBad, &t.StableRequests, &t.StableBad}
	queries, err := c.Queries(target)
	if err != nil {
		return Totals{}, err
	}
	for i, query := range queries {
		v, err := q.Query(ctx, query)
		switch {
		case errors.Is(err, ErrNoData):
			v = 0
		case err != nil:
			return Totals{}, fmt.Errorf("reading request counters: %w", err)
		}
		*dst[i] = v
	}
	if c.complement {
		t.CanaryBad = max(t.CanaryRequests-t.CanaryBad, 0)
		t.StableBad = max(t.StableRequests-t.StableBad, 0)
	}
	return t, nil
}

// Since is what happened between an earlier reading and this one. A
// counter that went down was reset (a restarted workload): its whole
// current value is new.
func (t Totals) Since(before Totals) Counts {
	d := func(now, then float64) float64 {
		if now < then {
			return now
		}
		return now - then
	}
	return Counts{CanaryRequests: d(t.CanaryRequests, before.CanaryRequests), CanaryBad: d(t.CanaryBad, before.CanaryBad),
		StableRequests: d(t.StableRequests, before.StableRequests), StableBad: d(t.StableBad, before.StableBad)}.clamped()
}

// FromCounts is a builtin metric measured from counter deltas over a step
// (c: from the step's start to now). request-success-rate: the canary's
// share of non-5xx answers in percent, judged against min and max;
// request-duration compared with the stable: the canary's share of
// requests slower than slowerThan, in percent; requests and bad counters
// of the pipeline's own: the canary's bad share in percent, against max. A comparison's evidence
// (cmp non-nil) is in the message. Fewer canary requests than
// minRequests (at least one) is inconclusive, never a pass.
func FromCounts(metric pipeline.Metric, c Counts, cmp *Sequence, minRequests int, queries []string, at time.Time) Measurement {
	m := Measurement{Metric: metric.Name, Query: strings.Join(queries, "\n"), Min: metric.Min, Max: metric.Max, Requests: c.CanaryRequests, At: at}
	what := "failed"
	switch {
	case metric.Builtin == "request-duration":
		what = "slower than " + time.Duration(metric.SlowerThan).String()
	case metric.Requests != "":
		what = "bad"
	}
	if c.CanaryRequests < float64(max(minRequests, 1)) {
		// Too few for a value; a comparison may still be conclusive (its
		// evidence holds however few requests it saw), and says so first.
		m.Outcome, m.Message = Inconclusive, fmt.Sprintf("%.0f canary requests since the step began, fewer than minRequests %d", c.CanaryRequests, max(minRequests, 1))
		if cmp != nil {
			m.Message = cmp.Explain(what) + "; " + m.Message
		}
		return m
	}
	switch {
	case metric.Builtin == "request-duration", metric.Requests != "":
		m.Value = 100 * c.CanaryBad / c.CanaryRequests
		m.Outcome, m.Message = Classify(m.Value, metric.Min, metric.Max)
	default:
		m.Value = 100 * (1 - c.CanaryBad/c.CanaryRequests)
		m.Outcome, m.Message = Classify(m.Value, metric.Min, metric.Max)
	}
	if cmp != nil {
		if m.Message != "" {
			m.Message += "; "
		}
		m.Message += cmp.Explain(what)
	}
	return m
}
