package canary

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/stages/analysis"
)

// measure evaluates every metric once, stores each measurement, and
// decides on all the measurements of this release that still count,
// returning the decision's evidence as stored (with step and weight). It
// also reports whether every metric passed this time.
func (r *rollout) measure(ctx context.Context, w *watcher, i, weight int, interval time.Duration) (d analysis.Decision, evidence []release.Measurement, passed bool, err error) {
	a := r.spec.Analysis
	if len(a.Metrics) == 0 {
		return analysis.Decision{Action: analysis.Continue}, nil, true, nil
	}
	target := r.target(fmt.Sprintf("%ds", int(interval.Round(time.Second).Seconds())))
	var werr error
	if w != nil {
		werr = w.check(ctx, r.querier)
	}
	passed = true
	for _, metric := range a.Metrics {
		var m analysis.Measurement
		switch {
		case w != nil && counted(metric) && werr != nil:
			m = analysis.Measurement{Metric: metric.Name, Min: metric.Min, Max: metric.Max, Requests: -1, Outcome: analysis.Error, Message: werr.Error(), At: time.Now()}
		case w != nil && counted(metric):
			m = w.measure(metric, a.MinRequests)
		default:
			m = analysis.Measure(ctx, r.querier, metric, target, a.MinRequests)
		}
		if ctx.Err() != nil {
			return analysis.Decision{}, nil, false, ctx.Err()
		}
		if metric.DryRun {
			m.Message = strings.TrimSuffix(release.DryRunNote+"; "+m.Message, "; ")
		}
		if _, err := r.run.Release.RecordMeasurement(ctx, toStored(m, i, weight)); err != nil {
			return analysis.Decision{}, nil, false, fmt.Errorf("storing a measurement: %w", err)
		}
		passed = passed && (m.Outcome == analysis.Pass || metric.DryRun)
		r.say("  %s", describe(m))
	}
	stored, err := r.run.Release.Measurements(ctx)
	if err != nil {
		return analysis.Decision{}, nil, false, fmt.Errorf("reading the measurements: %w", err)
	}
	var history []analysis.Measurement
	byID := map[int64]release.Measurement{}
	for _, m := range stored {
		if m.ID > r.notes.Since {
			history = append(history, fromStored(m))
			byID[m.ID] = m
		}
	}
	dryRun := map[string]bool{}
	for _, metric := range a.Metrics {
		dryRun[metric.Name] = metric.DryRun
	}
	d = analysis.Decide(history, analysis.Limits{FailureLimit: a.FailureLimit,
		ConsecutiveErrorLimit: a.ConsecutiveErrorLimit, InconclusiveLimit: a.InconclusiveLimit, DryRun: dryRun})
	for _, m := range d.Evidence {
		evidence = append(evidence, byID[m.ID])
	}
	return d, evidence, passed, nil
}

// fromAnalysis is the rollback verdict of a decision, with the deciding
// measurements, as stored, for evidence.
func (r *rollout) fromAnalysis(d analysis.Decision, evidence []release.Measurement) verdict {
	v := verdict{Action: rollback, Trigger: "analysis", Reason: d.Reason, DetectedAt: time.Now()}
	if n := len(d.Evidence); n > 0 {
		v.DetectedAt = d.Evidence[n-1].At
	}
	a := r.spec.Analysis
	v.Evidence = &release.RollbackDetail{Measurements: evidence, FailureLimit: max(a.FailureLimit, 1),
		ConsecutiveErrorLimit: cmp.Or(a.ConsecutiveErrorLimit, 3)}
	return v
}

// describe is one measurement in words, for the stage log.
func describe(m analysis.Measurement) string {
	s := fmt.Sprintf("%s: %s", m.Metric, m.Outcome)
	if m.Outcome == analysis.Pass || m.Outcome == analysis.Fail {
		s += " (" + release.FormatNumber(m.Value)
		if m.Min != nil {
			s += ", min " + release.FormatNumber(*m.Min)
		}
		if m.Max != nil {
			s += ", max " + release.FormatNumber(*m.Max)
		}
		s += ")"
	}
	if m.Message != "" && (m.Outcome != analysis.Pass || strings.HasPrefix(m.Message, release.DryRunNote)) {
		s += " — " + m.Message
	}
	return s
}

func toStored(m analysis.Measurement, step, weight int) release.Measurement {
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		m.Value = 0 // the message says NaN; stores and JSON take no NaN
	}
	return release.Measurement{Step: step, Weight: weight, Metric: m.Metric, Query: m.Query, Value: m.Value, Min: m.Min, Max: m.Max,
		Requests: m.Requests, Outcome: string(m.Outcome), Message: m.Message, At: m.At}
}

func fromStored(m release.Measurement) analysis.Measurement {
	return analysis.Measurement{ID: m.ID, Metric: m.Metric, Query: m.Query, Value: m.Value, Min: m.Min, Max: m.Max,
		Requests: m.Requests, Outcome: analysis.Outcome(m.Outcome), Message: m.Message, At: m.At}
}
