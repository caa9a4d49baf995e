package view

import (
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// A rollback explains itself with its numbers: the failing measurement,
// the limit, the weight, the commits, and how fast traffic came back.
func TestRollbackExplainsItselfWithNumbers(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 10, 1, 4, 0, time.Local)
	min := 99.0
	tests := []struct {
		name    string
		rb      RollbackView
		summary string
		explain []string
	}{
		{"analysis", RollbackView{ID: 3, Run: 12, App: "order-service", Trigger: "analysis", Weight: 10, Reason: "success-rate failed 2 time(s), reaching failureLimit 2",
			SourceSHA: "1a2b3c4d5e6f7a8b", Digest: "sha256:abc", ReleaseCommit: "c0ffee123456789", RollbackCommit: "deadbeef1234567",
			DetectedAt: at, RestoredAt: at.Add(4100 * time.Millisecond),
			Evidence: release.RollbackEvidence{Detail: release.RollbackDetail{Measurements: []release.Measurement{
				{Metric: "success-rate", Value: 80, Outcome: "fail", Message: "80 < min 99", At: at.Add(-4 * time.Second)},
				{Metric: "success-rate", Value: 71.2, Outcome: "fail", Message: "71.2 < min 99", At: at}}, FailureLimit: 2, ConsecutiveErrorLimit: 3},
				Timings: release.RollbackTimings{DecidedAt: at.Add(10 * time.Millisecond), PushedAt: at.Add(400 * time.Millisecond), RestoredAt: at.Add(4100 * time.Millisecond)}},
			Measurements: []store.Measurement{{Step: 0, Weight: 10, Metric: "success-rate", Value: 71.2, Min: &min, Outcome: "fail", Message: "71.2 < min 99", At: at}}},
			"success-rate 71.2 < min 99 at 10% weight, 2 failures (failureLimit 2); traffic back to stable in 4.1s",
			[]string{"Rollback 3 of order-service (run 12), triggered by analysis at 10% canary weight", "success-rate   fail         71.2 < min 99",
				"Release: source 1a2b3c4d5e6f, image sha256:abc", "released in c0ffee123456, rolled back in deadbeef1234",
				"decision 0.0s, git commit+push 0.4s, Argo CD sync until the route flipped 3.7s", "step 1 at  10%"}},
		{"Prometheus down", RollbackView{ID: 4, App: "shop", Trigger: "analysis", Weight: 25, DetectedAt: at, RestoredAt: at.Add(time.Second),
			Evidence: release.RollbackEvidence{Detail: release.RollbackDetail{Measurements: []release.Measurement{
				{Metric: "sr", Outcome: "error", Message: "connection refused"}, {Metric: "sr", Outcome: "error", Message: "connection refused"}}, ConsecutiveErrorLimit: 2}}},
			"sr connection refused at 25% weight, 2 errors in a row (consecutiveErrorLimit 2); traffic back to stable in 1.0s", nil},
		{"alert", RollbackView{ID: 5, App: "shop", Trigger: "alert", Actor: "HighErrorRate", Weight: 50, DetectedAt: at, RestoredAt: at.Add(2 * time.Second),
			Evidence: release.RollbackEvidence{Detail: release.RollbackDetail{Alert: release.Alert{Labels: map[string]string{"alertname": "HighErrorRate", "app": "shop"},
				Annotations: map[string]string{"summary": "5xx above 5%"}, StartsAt: at.Add(-time.Minute)}}}},
			"alert HighErrorRate firing at 50% weight; traffic back to stable in 2.0s",
			[]string{"alert HighErrorRate firing since", "summary: 5xx above 5%", "labels: alertname=HighErrorRate app=shop"}},
		{"manual, no evidence", Rollback(&store.Rollback{ID: 6, App: "shop", Rollback: release.Rollback{Trigger: "manual", Actor: "alice", Weight: 25, DetectedAt: at,
			RestoredAt: at.Add(-time.Second)}}),
			"aborted by alice at 25% weight; traffic back to stable in -", []string{"Release: source -, image -"}},
	}
	for _, tt := range tests {
		if got := tt.rb.Summary(); got != tt.summary {
			t.Errorf("%s: Summary() =\n  %q\nwant\n  %q", tt.name, got, tt.summary)
		}
		explain := tt.rb.Explain()
		for _, want := range tt.explain {
			if !strings.Contains(explain, want) {
				t.Errorf("%s: Explain() lacks %q:\n%s", tt.name, want, explain)
			}
		}
	}
}
