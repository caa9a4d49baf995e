package analysis

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
)

// fakeProm is an httptest Prometheus answering each query by a prefix of
// it: "" means no series, "down" a 503, several values several series.
func fakeProm(t *testing.T, answers map[string][]string) *Prometheus {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		q := r.Form.Get("query")
		for key, values := range answers {
			if !strings.HasPrefix(q, key) {
				continue
			}
			if len(values) == 1 && values[0] == "down" {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var result []any
			for _, v := range values {
				result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{1700000000, v}})
			}
			if result == nil {
				result = []any{}
			}
			json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
			return
		}
		t.Errorf("unexpected query %q", q)
	}))
	t.Cleanup(srv.Close)
	p, err := NewPrometheus(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr(f float64) *float64 { return &f }

func TestMeasureOutcomes(t *testing.T) {
	t.Parallel()
	target := Target{Namespace: "shop", Canary: "order-service-v2", Interval: "1m"}
	sr := pipeline.Metric{Name: "success-rate", Builtin: "request-success-rate", Min: ptr(99)}
	// The builtin queries' beginnings: the canary's request count, and its success rate.
	const (
		selected = `clamp_min(sum (istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload=~"order-service-v2"`
		count    = selected + `})`
		rate     = selected + `,response_code!~`
	)
	tests := []struct {
		name    string
		answers map[string][]string
		metric  pipeline.Metric
		minReq  int
		want    Outcome
		msg     string
	}{
		{"healthy canary", map[string][]string{count: {"120"}, rate: {"99.5"}}, sr, 50, Pass, ""},
		{"failing canary", map[string][]string{count: {"120"}, rate: {"71.2"}}, sr, 50, Fail, "71.2 < min 99"},
		{"too few requests", map[string][]string{count: {"12"}}, sr, 50, Inconclusive, "12 requests in 1m, fewer than minRequests 50"},
		{"no data", map[string][]string{count: {}}, sr, 50, Inconclusive, "fewer than minRequests"},
		{"NaN", map[string][]string{rate: {"NaN"}}, sr, 0, Inconclusive, "NaN"},
		{"Prometheus down", map[string][]string{selected: {"down"}}, sr, 50, Error, "querying Prometheus"},
		{"several series", map[string][]string{rate: {"99", "98"}}, sr, 0, Error, "2 series where one was expected"},
		{"alert quiet", map[string][]string{"count(ALERTS": {}}, pipeline.Metric{Name: "budget", Alert: "ErrorBudgetBurn"}, 0, Pass, "not firing"},
		{"alert firing", map[string][]string{"count(ALERTS": {"1"}}, pipeline.Metric{Name: "budget", Alert: "ErrorBudgetBurn"}, 0, Fail, "is firing"},
		{"custom query, max", map[string][]string{"sum(rate(checkout_errors_total": {"0.5"}}, pipeline.Metric{Name: "errors", Max: ptr(0.1),
			Query: `sum(rate(checkout_errors_total{version="{{ .Canary }}"}[{{ .Interval }}]))`}, 0, Fail, "0.5 > max 0.1"},
		{"bad template", nil, pipeline.Metric{Name: "bad", Max: ptr(1), Query: `{{ .Nope }}`}, 0, Error, "rendering the query"},
	}
	for _, tt := range tests {
		got := Measure(context.Background(), fakeProm(t, tt.answers), tt.metric, target, tt.minReq)
		if got.Outcome != tt.want || !strings.Contains(got.Message, tt.msg) {
			t.Errorf("%s: %s %q, want %s %q", tt.name, got.Outcome, got.Message, tt.want, tt.msg)
		}
	}
	got := Measure(context.Background(), fakeProm(t, map[string][]string{count: {"120"}, rate: {"100"}}), sr, target, 50)
	if !strings.Contains(got.Query, `destination_workload=~"order-service-v2"`) || !strings.Contains(got.Query, "offset 1m) or vector(0)") || got.Requests != 120 {
		t.Errorf("rendered query %q, requests %v", got.Query, got.Requests)
	}
}
