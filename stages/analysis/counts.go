package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
)

// Counting from a step's start. Rates over a range (rate(x[1m])) miss a
// series' first sample, so a canary whose 5xx series is born during the
// step is under-counted; reading the counters themselves at the step's
// start and at each check, and taking differences, counts a new series
// from its first request (a series absent at the start counted from 0).

// The counters of the builtin metrics: Istio's request count, all and 5xx,
// of one workload.
const (
	requestsTotal = `sum(istio_requests_total{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload=~"{{ .Workload }}"})`
	errorsTotal   = `sum(istio_requests_total{reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload=~"{{ .Workload }}",response_code=~"5.."})`
)

// Totals are the counters' values at one moment.
type Totals struct {
	At                           time.Time
	CanaryRequests, CanaryErrors float64
	StableRequests, StableErrors float64
}

// CounterQueries are the four queries ReadTotals runs for target, as sent.
func CounterQueries(target Target) []string {
	var out []string
	for _, w := range []string{target.Canary, target.Stable} {
		for _, q := range []string{requestsTotal, errorsTotal} {
			text, _ := render(q, map[string]string{"Namespace": target.Namespace, "Workload": w})
			out = append(out, text)
		}
	}
	return out
}

// ReadTotals reads the request and 5xx counters of both workloads now. A
// counter with no series yet is 0.
func ReadTotals(ctx context.Context, q Querier, target Target) (Totals, error) {
	t := Totals{At: time.Now()}
	dst := []*float64{&t.CanaryRequests, &t.CanaryErrors, &t.StableRequests, &t.StableErrors}
	for i, query := range CounterQueries(target) {
		v, err := q.Query(ctx, query)
		switch {
		case errors.Is(err, ErrNoData):
			v = 0
		case err != nil:
			return Totals{}, fmt.Errorf("reading request counters: %w", err)
		}
		*dst[i] = v
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
	return Counts{CanaryRequests: d(t.CanaryRequests, before.CanaryRequests), CanaryBad: d(t.CanaryErrors, before.CanaryErrors),
		StableRequests: d(t.StableRequests, before.StableRequests), StableBad: d(t.StableErrors, before.StableErrors)}
}

// SuccessRate is the builtin request-success-rate measured from counter
// deltas over a step (c: from the step's start to now): the canary's
// share of non-5xx answers in percent, judged against min and max; with
// a comparison (cmp non-nil), its evidence is in the message. Fewer
// canary requests than minRequests (at least one) is inconclusive, never
// a pass.
func SuccessRate(metric pipeline.Metric, c Counts, cmp *Sequence, minRequests int, queries []string, at time.Time) Measurement {
	m := Measurement{Metric: metric.Name, Query: strings.Join(queries, "\n"), Min: metric.Min, Max: metric.Max, Requests: c.CanaryRequests, At: at}
	if c.CanaryRequests < float64(max(minRequests, 1)) {
		m.Outcome, m.Message = Inconclusive, fmt.Sprintf("%.0f canary requests since the step began, fewer than minRequests %d", c.CanaryRequests, max(minRequests, 1))
		return m
	}
	m.Value = 100 * (1 - c.CanaryBad/c.CanaryRequests)
	m.Outcome, m.Message = Classify(m.Value, metric.Min, metric.Max)
	if cmp != nil {
		if m.Message != "" {
			m.Message += "; "
		}
		m.Message += cmp.Explain("failed")
	}
	return m
}
