package canary

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/stages/analysis"
)

// DefaultConfidence is how sure a comparison with the stable must be to
// roll back: at most 1 % of healthy canaries are.
const DefaultConfidence = 0.99

// watcher follows request counters of both workloads over one step: the
// builtin success rate is measured from their deltas since the step
// began (so a 5xx series born during the step counts from its first
// request), and metrics compared with the stable or held to a fixed
// bound of a counted share are checked every checkEvery, rolling back as
// soon as the evidence is conclusive.
type watcher struct {
	target     analysis.Target
	every      time.Duration
	tracks     map[string]*track // by metric name
	continuous bool              // some metric is checked within the step
}

// track is one metric's counters since the step began, its comparison
// with the stable and its bound.
type track struct {
	counter     analysis.Counter
	start, last analysis.Totals
	seq         *analysis.Sequence // nil: not compared
	bound       *analysis.Sequence // nil: its bound is judged at the interval's end only
}

// counted reports whether metric m is measured from counters.
func counted(m pipeline.Metric) bool {
	return m.Builtin == "request-success-rate" || m.Compare == "stable" || m.Requests != ""
}

// istioBuckets are the bounds, in milliseconds, of Istio's request
// duration histogram (its default buckets).
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// bound is how metric m's fixed bound is checked continuously: the
// counter of its requests and bad ones, and the bad share the bound
// allows. request-success-rate's min allows 100 − min percent of 5xx;
// request-duration's max on the p99 allows 1 % of the requests slower
// than it, countable only when it is a bucket bound of the histogram;
// requests and bad counters' max is the bad share in percent. ok is
// false for the others, judged at each interval's end.
func bound(m pipeline.Metric) (c analysis.Counter, limit float64, ok bool) {
	switch {
	case m.Builtin == "request-success-rate" && m.Min != nil:
		return analysis.Errors(), 1 - *m.Min/100, true
	case m.Builtin == "request-duration" && m.Compare == "" && m.Max != nil && slices.Contains(istioBuckets, *m.Max):
		return analysis.SlowerThan(time.Duration(*m.Max * float64(time.Millisecond))), 0.01, true
	case m.Requests != "" && m.Max != nil:
		return analysis.CounterOf(m), *m.Max / 100, true
	}
	return analysis.Counter{}, 0, false
}

// watch starts watching a step, or returns nil when no metric needs the
// counters (or there is no Prometheus).
func (r *rollout) watch(ctx context.Context) (*watcher, error) {
	needs := func(m pipeline.Metric) bool {
		_, _, ok := bound(m)
		return counted(m) || ok
	}
	if r.querier == nil || !slices.ContainsFunc(r.spec.Analysis.Metrics, needs) {
		return nil, nil
	}
	w := &watcher{target: r.target(""), every: r.checkEvery(ctx), tracks: map[string]*track{}}
	for _, m := range r.spec.Analysis.Metrics {
		if !needs(m) {
			continue
		}
		t := &track{counter: analysis.CounterOf(m)}
		if m.Compare == "stable" {
			ratio, margin, absolute := m.Tolerance()
			s := analysis.NewSequence(ratio)
			if absolute {
				s = analysis.NewMargin(margin)
			}
			t.seq, w.continuous = &s, true
		}
		if c, limit, ok := bound(m); ok {
			if !counted(m) {
				t.counter = c
			}
			b := analysis.NewBound(limit)
			t.bound, w.continuous = &b, true
		}
		var err error
		if t.start, err = analysis.ReadTotals(ctx, r.querier, w.target, t.counter); err != nil {
			return nil, err
		}
		t.last = t.start
		w.tracks[m.Name] = t
	}
	return w, nil
}

// target is what the metrics' queries are about.
func (r *rollout) target(interval string) analysis.Target {
	ns := cmp.Or(r.spec.Workloads.Namespace, "default")
	return analysis.Target{App: r.run.App, Namespace: ns, Canary: r.spec.Workloads.Canary, Stable: r.spec.Workloads.Stable, Interval: interval}
}

// checkEvery is the analysis's checkEvery, else Prometheus's scrape
// interval, else one second.
func (r *rollout) checkEvery(ctx context.Context) time.Duration {
	if d := time.Duration(r.spec.Analysis.CheckEvery); d > 0 {
		return d
	}
	if d, err := r.scrapeInterval(ctx); err == nil && d > 0 {
		return d
	}
	return time.Second
}

// check reads the counters and folds what happened since the last check
// into each comparison and bound.
func (w *watcher) check(ctx context.Context, q analysis.Querier) error {
	for _, t := range w.tracks {
		now, err := analysis.ReadTotals(ctx, q, w.target, t.counter)
		if err != nil {
			return err
		}
		counts := now.Since(t.last)
		t.last = now
		for _, s := range []**analysis.Sequence{&t.seq, &t.bound} {
			if *s != nil {
				next := (*s).Add(counts, now.At)
				*s = &next
			}
		}
	}
	return nil
}

// worse returns the first metric (in the pipeline's order, dry-run ones
// aside) on which the canary is conclusively worse than the stable or
// above its bound, with that evidence.
func (w *watcher) worse(metrics []pipeline.Metric, confidence float64) (pipeline.Metric, analysis.Sequence, bool) {
	for _, m := range metrics {
		t := w.tracks[m.Name]
		if t == nil || m.DryRun {
			continue
		}
		for _, s := range []*analysis.Sequence{t.seq, t.bound} {
			if s != nil && s.Worse(confidence) {
				return m, *s, true
			}
		}
	}
	return pipeline.Metric{}, analysis.Sequence{}, false
}

// measure is metric m over the step so far, from its counters.
func (w *watcher) measure(m pipeline.Metric, minRequests int) analysis.Measurement {
	t := w.tracks[m.Name]
	queries, _ := t.counter.Queries(w.target) // rendered before, by every ReadTotals
	return analysis.FromCounts(m, t.last.Since(t.start), t.seq, minRequests, queries, t.last.At)
}

// verdictOn is the rollback the evidence s on m decided within step i at
// weight, stored as a failed measurement: the evidence on-call reads.
func (r *rollout) verdictOn(ctx context.Context, w *watcher, m pipeline.Metric, s analysis.Sequence, i, weight int) verdict {
	meas, why := w.measure(m, r.spec.Analysis.MinRequests), "the canary is worse than the stable"
	meas.Outcome, meas.At = analysis.Fail, s.PeakAt
	if s.Bound {
		meas, why = w.beyondBound(m, s, meas)
	} else {
		meas.Message = "canary worse than stable: " + meas.Message
	}
	stored := toStored(meas, i, weight)
	id, err := r.run.Release.RecordMeasurement(ctx, stored)
	if err != nil {
		return r.failed(ctx, fmt.Errorf("storing a measurement: %w", err))
	}
	stored.ID = id
	r.say("  %s", describe(meas))
	meas.ID = id
	d := analysis.Decision{Action: analysis.Rollback, Evidence: []analysis.Measurement{meas},
		Reason: fmt.Sprintf("%s: %s (%s)", m.Name, why, meas.Message)}
	return r.fromAnalysis(d, []release.Measurement{stored})
}

// beyondBound is meas, the measurement of m when its bound's evidence s
// became conclusive, explained: the counts, the share, the bound, the
// confidence and how far into the step.
func (w *watcher) beyondBound(m pipeline.Metric, s analysis.Sequence, meas analysis.Measurement) (analysis.Measurement, string) {
	t := w.tracks[m.Name]
	var what, why, beyond string
	total := s.Total
	meas.Requests = total.CanaryRequests
	if total.CanaryRequests > 0 {
		meas.Value = 100 * total.CanaryBad / total.CanaryRequests
	}
	switch {
	case m.Builtin == "request-success-rate":
		what, why = "failed (5xx)", fmt.Sprintf("the canary's success rate is below min %s", release.FormatNumber(*m.Min))
		meas.Value = 100 - meas.Value
		_, beyond = analysis.Classify(meas.Value, m.Min, nil)
	case m.Builtin == "request-duration":
		// The p99 is above max: more than 1 % of the requests are slower.
		what, why = "slower than "+release.FormatNumber(*m.Max)+" ms", fmt.Sprintf("the canary's p99 is above max %s ms", release.FormatNumber(*m.Max))
		meas.Value, beyond = *m.Max, "p99 > max "+release.FormatNumber(*m.Max)
		queries, _ := t.counter.Queries(w.target)
		meas.Query = strings.Join(queries, "\n")
	default: // requests and bad counters of the pipeline's own
		what, why = "bad", fmt.Sprintf("the canary's bad share is above max %s %%", release.FormatNumber(*m.Max))
		_, beyond = analysis.Classify(meas.Value, nil, m.Max)
	}
	if beyond == "" { // the share so far is within the bound; the evidence is not
		beyond = "beyond its bound"
	}
	meas.Message = fmt.Sprintf("%s: %s; conclusive %s into the step, checked every %s", beyond, s.Explain(what),
		s.PeakAt.Sub(t.start.At).Round(100*time.Millisecond), w.every)
	return meas, why
}

// reportScrape says, at the release's start, how often Prometheus
// scrapes and which steps are too short to see enough scrapes (fewer
// than 5 in an interval: measurements over it are noisy or empty).
func (r *rollout) reportScrape(ctx context.Context) {
	if len(r.spec.Analysis.Metrics) == 0 {
		return
	}
	scrape, err := r.scrapeInterval(ctx)
	if errors.Is(err, errNoScrapeInterval) {
		return
	}
	if err != nil {
		r.say("analysis: %v", err)
		return
	}
	r.say("analysis: Prometheus scrapes every %s; comparisons with the stable and bounds of counted shares are checked every %s", scrape, r.checkEvery(ctx))
	for _, m := range r.spec.Analysis.Metrics {
		if _, _, ok := bound(m); !ok && m.Builtin == "request-duration" && m.Compare == "" && m.Max != nil {
			r.say("analysis: %s's max %s ms is not a bound of Istio's duration histogram buckets (%s ms): it is judged at each interval's end, not within it",
				m.Name, release.FormatNumber(*m.Max), strings.Trim(fmt.Sprint(istioBuckets), "[]"))
		}
	}
	for i, st := range r.plan() {
		if iv, err := time.ParseDuration(st.Interval); err == nil && iv < 5*scrape {
			r.say("analysis: WARNING step %d's interval %s spans fewer than 5 scrapes (every %s): its measurements will be noisy or empty; make it at least %s", i+1, iv, scrape, 5*scrape)
		}
	}
}

// errNoScrapeInterval: the querier cannot say how often it scrapes.
var errNoScrapeInterval = errors.New("the querier does not report a scrape interval")

// scrapeInterval is how often the analysis's Prometheus scrapes.
func (r *rollout) scrapeInterval(ctx context.Context) (time.Duration, error) {
	s, ok := r.querier.(interface {
		ScrapeInterval(ctx context.Context) (time.Duration, error)
	})
	if !ok {
		return 0, errNoScrapeInterval
	}
	return s.ScrapeInterval(ctx)
}
