// Package analysis judges a canary from Prometheus: it renders each
// metric's query (builtin Flagger-style Istio queries, custom templated
// PromQL, or a firing alert), measures it, classifies each measurement as
// pass, fail, inconclusive or error, and decides — a pure function —
// whether the release goes on, rolls back, or pauses for a person.
//
// Comparisons, stated once: a measurement fails when value < min or
// value > max (a value equal to a bound passes). The canary rolls back
// when a metric's failures reach failureLimit (failures >= failureLimit;
// Argo Rollouts rolls back only when failures exceed its limit — Slipway
// does not), or when a metric's consecutive errors reach
// consecutiveErrorLimit (Prometheus down is fail-safe: never a pass). It
// pauses for a person when a metric's inconclusive measurements reach
// inconclusiveLimit. A limit of 0 takes the default. A metric in dry run
// never counts.
//
// Builtin success rates are measured from counter deltas since the step
// began (counts.go), and metrics compared with the stable are judged
// continuously by an always-valid sequential test (sequential.go).
package analysis

import (
	"fmt"
	"time"

	"github.com/slipwayci/slipway/release"
)

// Outcome is how one measurement came out.
type Outcome string

const (
	Pass         Outcome = "pass"
	Fail         Outcome = "fail"
	Inconclusive Outcome = "inconclusive" // no data, NaN, too few requests
	Error        Outcome = "error"        // Prometheus unreachable, query failed, several series
)

// Measurement is one evaluation of one metric: all an on-call engineer
// needs to see why a release went the way it did.
type Measurement struct {
	ID       int64 // the stored measurement's, once stored (the caller's to set)
	Metric   string
	Query    string // as rendered
	Value    float64
	Min, Max *float64
	Requests float64 // requests seen in the interval (builtin metrics), -1 when not measured
	Outcome  Outcome
	Message  string
	At       time.Time
}

// Limits are the analysis limits of a canary.
type Limits struct {
	FailureLimit          int // default 1
	ConsecutiveErrorLimit int // default 3
	InconclusiveLimit     int // default 3
	// DryRun names the metrics in dry run: measured and explained, never
	// counted towards a rollback or a pause.
	DryRun map[string]bool
}

func (l Limits) withDefaults() Limits {
	if l.FailureLimit <= 0 {
		l.FailureLimit = 1
	}
	if l.ConsecutiveErrorLimit <= 0 {
		l.ConsecutiveErrorLimit = 3
	}
	if l.InconclusiveLimit <= 0 {
		l.InconclusiveLimit = 3
	}
	return l
}

// Action is what the canary does next.
type Action string

const (
	Continue Action = "continue"
	Rollback Action = "rollback"
	Pause    Action = "pause"
)

// Decision is an action and why, with the measurements that decided it.
type Decision struct {
	Action   Action
	Reason   string
	Evidence []Measurement
}

// Decide looks at every measurement of the current release, oldest first,
// and decides. Rolling back wins over pausing.
func Decide(history []Measurement, limits Limits) Decision {
	l := limits.withDefaults()
	type tally struct {
		fails, consecutiveErrors, inconclusive int
		failed, errored, unsure                []Measurement
	}
	per := map[string]*tally{}
	var order []string
	for _, m := range history {
		if l.DryRun[m.Metric] {
			continue
		}
		t := per[m.Metric]
		if t == nil {
			t = &tally{}
			per[m.Metric] = t
			order = append(order, m.Metric)
		}
		if m.Outcome == Error {
			t.consecutiveErrors++
			t.errored = append(t.errored, m)
		} else {
			t.consecutiveErrors, t.errored = 0, nil
		}
		switch m.Outcome {
		case Fail:
			t.fails++
			t.failed = append(t.failed, m)
		case Inconclusive:
			t.inconclusive++
			t.unsure = append(t.unsure, m)
		}
	}
	for _, name := range order {
		if t := per[name]; t.fails >= l.FailureLimit {
			reason := fmt.Sprintf("%s failed %d time(s), reaching failureLimit %d", name, t.fails, l.FailureLimit)
			if last := t.failed[len(t.failed)-1]; last.Message != "" {
				reason += " (last: " + last.Message + ")"
			}
			return Decision{Action: Rollback, Evidence: t.failed, Reason: reason}
		}
	}
	for _, name := range order {
		if t := per[name]; t.consecutiveErrors >= l.ConsecutiveErrorLimit {
			return Decision{Action: Rollback, Evidence: t.errored,
				Reason: fmt.Sprintf("%s could not be measured %d times in a row (consecutiveErrorLimit %d); rolling back rather than trusting a blind canary", name, t.consecutiveErrors, l.ConsecutiveErrorLimit)}
		}
	}
	for _, name := range order {
		if t := per[name]; t.inconclusive >= l.InconclusiveLimit {
			return Decision{Action: Pause, Evidence: t.unsure,
				Reason: fmt.Sprintf("%s was inconclusive %d times (inconclusiveLimit %d): too little traffic or no data; a person decides", name, t.inconclusive, l.InconclusiveLimit)}
		}
	}
	return Decision{Action: Continue}
}

// Classify turns a value into pass or fail against the bounds.
func Classify(value float64, min, max *float64) (Outcome, string) {
	switch {
	case min != nil && value < *min:
		return Fail, fmt.Sprintf("%s < min %s", release.FormatNumber(value), release.FormatNumber(*min))
	case max != nil && value > *max:
		return Fail, fmt.Sprintf("%s > max %s", release.FormatNumber(value), release.FormatNumber(*max))
	}
	return Pass, ""
}
