package analysis

import (
	"strings"
	"testing"
)

func m(metric string, o Outcome) Measurement { return Measurement{Metric: metric, Outcome: o} }

func TestDecideAtEveryBoundary(t *testing.T) {
	t.Parallel()
	limits := Limits{FailureLimit: 2, ConsecutiveErrorLimit: 3, InconclusiveLimit: 2}
	tests := []struct {
		name    string
		history []Measurement
		limits  Limits
		want    Action
		reason  string
	}{
		{"nothing measured", nil, limits, Continue, ""},
		{"all pass", []Measurement{m("sr", Pass), m("lat", Pass)}, limits, Continue, ""},
		{"one failure below the limit of 2", []Measurement{m("sr", Fail), m("sr", Pass)}, limits, Continue, ""},
		{"failures == limit rolls back (>=, not >)", []Measurement{m("sr", Fail), m("sr", Pass), m("sr", Fail)}, limits, Rollback, "sr failed 2"},
		{"failures of different metrics do not add up", []Measurement{m("sr", Fail), m("lat", Fail)}, limits, Continue, ""},
		{"default failure limit is 1", []Measurement{m("sr", Fail)}, Limits{}, Rollback, "failureLimit 1"},
		{"2 consecutive errors: not yet", []Measurement{m("sr", Error), m("sr", Error)}, limits, Continue, ""},
		{"3 consecutive errors roll back (fail-safe)", []Measurement{m("sr", Error), m("sr", Error), m("sr", Error)}, limits, Rollback, "could not be measured 3 times in a row"},
		{"a pass resets consecutive errors", []Measurement{m("sr", Error), m("sr", Error), m("sr", Pass), m("sr", Error)}, limits, Continue, ""},
		{"inconclusive == limit pauses", []Measurement{m("sr", Inconclusive), m("sr", Pass), m("sr", Inconclusive)}, limits, Pause, "inconclusive 2 times"},
		{"rollback wins over pause", []Measurement{m("sr", Inconclusive), m("sr", Inconclusive), m("lat", Fail), m("lat", Fail)}, limits, Rollback, "lat failed"},
		{"a metric in dry run never rolls back", []Measurement{m("new", Fail), m("new", Fail), m("new", Error), m("new", Error), m("new", Error)},
			Limits{FailureLimit: 2, DryRun: map[string]bool{"new": true}}, Continue, ""},
		{"nor pauses", []Measurement{m("new", Inconclusive), m("new", Inconclusive), m("new", Inconclusive)}, Limits{DryRun: map[string]bool{"new": true}}, Continue, ""},
		{"beside it, the others decide", []Measurement{m("new", Fail), m("sr", Fail)}, Limits{DryRun: map[string]bool{"new": true}}, Rollback, "sr failed 1"},
	}
	for _, tt := range tests {
		d := Decide(tt.history, tt.limits)
		if d.Action != tt.want || !strings.Contains(d.Reason, tt.reason) {
			t.Errorf("%s: %s %q, want %s %q", tt.name, d.Action, d.Reason, tt.want, tt.reason)
		}
		if d.Action != Continue && len(d.Evidence) == 0 {
			t.Errorf("%s: a %s without evidence", tt.name, d.Action)
		}
	}
}

func TestClassifyBoundsAreInclusive(t *testing.T) {
	t.Parallel()
	lo, hi := 99.0, 500.0
	for _, tt := range []struct {
		v    float64
		min  *float64
		max  *float64
		want Outcome
	}{
		{99, &lo, nil, Pass}, {98.99, &lo, nil, Fail}, {500, nil, &hi, Pass}, {500.01, nil, &hi, Fail}, {100, &lo, &hi, Pass},
	} {
		if got, _ := Classify(tt.v, tt.min, tt.max); got != tt.want {
			t.Errorf("Classify(%g) = %s, want %s", tt.v, got, tt.want)
		}
	}
}
