package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/slipwayci/slipway/excerpt"
	"github.com/slipwayci/slipway/pipeline"
)

// ErrNoData means the query matched no series.
var ErrNoData = errors.New("the query returned no data")

// Querier runs one instant query that must yield at most one series.
type Querier interface {
	Query(ctx context.Context, query string) (float64, error)
}

// Prometheus queries a Prometheus server's HTTP API.
type Prometheus struct {
	api    promv1.API
	client api.Client
}

// NewPrometheus returns a Querier for the server at addr (http://host:port).
func NewPrometheus(addr string) (*Prometheus, error) {
	c, err := api.NewClient(api.Config{Address: addr})
	if err != nil {
		return nil, fmt.Errorf("prometheus at %s: %w", addr, err)
	}
	return &Prometheus{api: promv1.NewAPI(c), client: c}, nil
}

// ScrapeInterval is the shortest scrape interval among the server's
// active targets: how fresh its counters can be.
func (p *Prometheus) ScrapeInterval(ctx context.Context) (time.Duration, error) {
	u := p.client.URL("/api/v1/targets", nil)
	u.RawQuery = "state=active"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	_, body, err := p.client.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("reading Prometheus's targets: %s", excerpt.Of(err.Error()))
	}
	var out struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeInterval string `json:"scrapeInterval"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("reading Prometheus's targets: %s", excerpt.Of(err.Error()))
	}
	var shortest time.Duration
	for _, t := range out.Data.ActiveTargets {
		d, err := model.ParseDuration(t.ScrapeInterval)
		if err == nil && d > 0 && (shortest == 0 || time.Duration(d) < shortest) {
			shortest = time.Duration(d)
		}
	}
	if shortest == 0 {
		return 0, errors.New("Prometheus reports no active target with a scrape interval")
	}
	return shortest, nil
}

// Query runs q now. No series is ErrNoData; several are an error, never
// "the last one wins".
func (p *Prometheus) Query(ctx context.Context, q string) (float64, error) {
	v, _, _, err := p.api.Query(ctx, q, time.Now())
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("querying Prometheus: %w", ctx.Err())
		}
		// What the server said, in short: its text reaches the run's
		// reason and the commit status.
		return 0, fmt.Errorf("querying Prometheus: %s", excerpt.Of(err.Error()))
	}
	switch v := v.(type) {
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, ErrNoData
		case 1:
			return float64(v[0].Value), nil
		}
		return 0, fmt.Errorf("the query returned %d series where one was expected", len(v))
	case *model.Scalar:
		return float64(v.Value), nil
	}
	return 0, fmt.Errorf("the query returned a %s, not a single value", v.Type())
}

// Target is what a metric's query is about: the template data of queries.
type Target struct {
	App       string
	Namespace string
	Canary    string // the canary's workload (Deployment) name
	Stable    string
	Interval  string // a PromQL range, e.g. 1m
}

// The builtin queries are Flagger's Istio queries, but over counts rather
// than rates: a counter's increase over the interval is its value now
// minus its value an interval ago, summed before subtracting so that a
// series born within the interval (the canary's first 5xx answer) counts
// from its first request — rate() and increase() drop a series' first
// sample. A counter reset within the interval (a restarted pod) is not
// compensated: its side's increase is clamped at zero.
const (
	istioSelector = `reporter="destination",destination_workload_namespace="{{ .Namespace }}",destination_workload=~"{{ .Canary }}"`
	requests      = `istio_requests_total{` + istioSelector + `}`
	nonErrors     = `istio_requests_total{` + istioSelector + `,response_code!~"5.*"}`
	buckets       = `istio_request_duration_milliseconds_bucket{` + istioSelector + `}`
	alertFiring   = `count(ALERTS{alertname="{{ .Alert }}",alertstate="firing"})`
)

var (
	successRate  = increaseOf(nonErrors, "") + ` / ` + increaseOf(requests, "") + ` * 100`
	duration     = `histogram_quantile(0.99, ` + increaseOf(buckets, "le") + `)`
	requestCount = increaseOf(requests, "")
)

// increaseOf is the PromQL for how much the sum of the counters selected
// grew over the last .Interval, grouped by label by ("" for none).
func increaseOf(selector, by string) string {
	sum := "sum"
	if by != "" {
		sum = "sum by (" + by + ")"
	}
	before := "vector(0)" // no series an interval ago: all of it is new
	if by != "" {
		before = "0 * " + sum + " (" + selector + ")"
	}
	return fmt.Sprintf("clamp_min(%s (%s) - (%s (%s offset {{ .Interval }}) or %s), 0)", sum, selector, sum, selector, before)
}

var builtins = map[string]string{"request-success-rate": successRate, "request-duration": duration}

// render renders a query as every pipeline template is: bounded.
func render(text string, data any) (string, error) {
	return pipeline.ExecuteBounded("q", text, data)
}

// Measure evaluates one metric for target now. minRequests applies to the
// builtin metrics: fewer requests than that in the interval make the
// measurement inconclusive rather than a pass.
func Measure(ctx context.Context, q Querier, metric pipeline.Metric, target Target, minRequests int) Measurement {
	m := Measurement{Metric: metric.Name, Min: metric.Min, Max: metric.Max, Requests: -1, At: time.Now()}
	text := metric.Query
	switch {
	case metric.Builtin != "":
		text = builtins[metric.Builtin]
	case metric.Alert != "":
		text = strings.ReplaceAll(alertFiring, "{{ .Alert }}", metric.Alert)
	}
	query, err := render(text, target)
	if err != nil {
		m.Outcome, m.Message = Error, "rendering the query: "+err.Error()
		return m
	}
	m.Query = query
	if metric.Builtin != "" && minRequests > 0 {
		countQuery, _ := render(requestCount, target)
		n, err := q.Query(ctx, countQuery)
		if err != nil && !errors.Is(err, ErrNoData) {
			m.Outcome, m.Message = Error, err.Error()
			return m
		}
		m.Requests = n
		if n < float64(minRequests) {
			m.Outcome, m.Message = Inconclusive, fmt.Sprintf("%.0f requests in %s, fewer than minRequests %d", n, target.Interval, minRequests)
			return m
		}
	}
	v, err := q.Query(ctx, query)
	switch {
	case metric.Alert != "" && errors.Is(err, ErrNoData):
		m.Outcome, m.Message = Pass, fmt.Sprintf("alert %s is not firing", metric.Alert)
	case metric.Alert != "" && err == nil:
		m.Value, m.Outcome, m.Message = v, Fail, fmt.Sprintf("alert %s is firing", metric.Alert)
	case errors.Is(err, ErrNoData):
		m.Outcome, m.Message = Inconclusive, err.Error()
	case err != nil:
		m.Outcome, m.Message = Error, err.Error()
	case math.IsNaN(v) || math.IsInf(v, 0):
		m.Value, m.Outcome, m.Message = v, Inconclusive, "the query returned NaN (no requests in the interval?)"
	default:
		m.Value = v
		m.Outcome, m.Message = Classify(v, metric.Min, metric.Max)
	}
	return m
}
