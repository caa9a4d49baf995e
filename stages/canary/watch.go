package canary

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/analysis"
)

// DefaultConfidence is how sure a comparison with the stable must be to
// roll back: at most 1 % of healthy canaries are.
const DefaultConfidence = 0.99

// watcher follows request counters of both workloads over one step: the
// builtin success rate is measured from their deltas since the step
// began (so a 5xx series born during the step counts from its first
// request), and metrics compared with the stable are checked every
// checkEvery, rolling back as soon as the evidence is conclusive.
type watcher struct {
	target  analysis.Target
	every   time.Duration
	tracks  map[string]*track // by metric name
	compare bool              // some metric is compared with the stable
}

// track is one metric's counters since the step began, and its comparison.
type track struct {
	counter     analysis.Counter
	start, last analysis.Totals
	seq         *analysis.Sequence // nil: not compared
}

// counted reports whether metric m is measured from counters.
func counted(m pipeline.Metric) bool {
	return m.Builtin == "request-success-rate" || m.Compare == "stable"
}

// watch starts watching a step, or returns nil when no metric needs the
// counters (or there is no Prometheus).
func (r *release) watch(ctx context.Context) (*watcher, error) {
	if r.querier == nil || !slices.ContainsFunc(r.spec.Analysis.Metrics, counted) {
		return nil, nil
	}
	w := &watcher{target: r.target(""), every: r.checkEvery(ctx), tracks: map[string]*track{}}
	for _, m := range r.spec.Analysis.Metrics {
		if !counted(m) {
			continue
		}
		t := &track{counter: analysis.CounterOf(m)}
		if m.Compare == "stable" {
			ratio, margin, absolute := m.Tolerance()
			s := analysis.NewSequence(ratio)
			if absolute {
				s = analysis.NewMargin(margin)
			}
			t.seq, w.compare = &s, true
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
func (r *release) target(interval string) analysis.Target {
	ns := cmp.Or(r.spec.Workloads.Namespace, "default")
	return analysis.Target{App: r.run.App, Namespace: ns, Canary: r.spec.Workloads.Canary, Stable: r.spec.Workloads.Stable, Interval: interval}
}

// checkEvery is the analysis's checkEvery, else Prometheus's scrape
// interval, else one second.
func (r *release) checkEvery(ctx context.Context) time.Duration {
	if d := time.Duration(r.spec.Analysis.CheckEvery); d > 0 {
		return d
	}
	if d, err := r.scrapeInterval(ctx); err == nil && d > 0 {
		return d
	}
	return time.Second
}

// check reads the counters and folds what happened since the last check
// into each comparison.
func (w *watcher) check(ctx context.Context, q analysis.Querier) error {
	for _, t := range w.tracks {
		now, err := analysis.ReadTotals(ctx, q, w.target, t.counter)
		if err != nil {
			return err
		}
		counts := now.Since(t.last)
		t.last = now
		if t.seq != nil {
			s := t.seq.Add(counts, now.At)
			t.seq = &s
		}
	}
	return nil
}

// worse returns the first compared metric (in the pipeline's order) the
// canary is conclusively worse on.
func (w *watcher) worse(metrics []pipeline.Metric, confidence float64) (pipeline.Metric, analysis.Sequence, bool) {
	for _, m := range metrics {
		if t := w.tracks[m.Name]; t != nil && t.seq != nil && t.seq.Worse(confidence) {
			return m, *t.seq, true
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

// verdictOn is the rollback the comparison of m decided, stored as a
// failed measurement of step i at weight: the evidence on-call reads.
func (r *release) verdictOn(ctx context.Context, w *watcher, m pipeline.Metric, s analysis.Sequence, i, weight int) verdict {
	meas := w.measure(m, r.spec.Analysis.MinRequests)
	meas.Outcome, meas.At = analysis.Fail, s.PeakAt
	meas.Message = "canary worse than stable: " + meas.Message
	stored := toStored(meas, i, weight)
	id, err := r.run.Release.Measured(ctx, stored)
	if err != nil {
		return r.failed(ctx, fmt.Errorf("storing a measurement: %w", err))
	}
	stored.ID = id
	r.say("  %s", describe(meas))
	meas.ID = id
	d := analysis.Decision{Action: analysis.Rollback, Evidence: []analysis.Measurement{meas},
		Reason: fmt.Sprintf("%s: the canary is worse than the stable (%s)", m.Name, meas.Message)}
	return r.fromAnalysis(d, []stages.Measurement{stored})
}

// reportScrape says, at the release's start, how often Prometheus
// scrapes and which steps are too short to see enough scrapes (fewer
// than 5 in an interval: measurements over it are noisy or empty).
func (r *release) reportScrape(ctx context.Context) {
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
	r.say("analysis: Prometheus scrapes every %s; comparisons with the stable are checked every %s", scrape, r.checkEvery(ctx))
	for i, st := range r.plan() {
		if iv, err := time.ParseDuration(st.Interval); err == nil && iv < 5*scrape {
			r.say("analysis: WARNING step %d's interval %s spans fewer than 5 scrapes (every %s): its measurements will be noisy or empty; make it at least %s", i+1, iv, scrape, 5*scrape)
		}
	}
}

// errNoScrapeInterval: the querier cannot say how often it scrapes.
var errNoScrapeInterval = errors.New("the querier does not report a scrape interval")

// scrapeInterval is how often the analysis's Prometheus scrapes.
func (r *release) scrapeInterval(ctx context.Context) (time.Duration, error) {
	s, ok := r.querier.(interface {
		ScrapeInterval(ctx context.Context) (time.Duration, error)
	})
	if !ok {
		return 0, errNoScrapeInterval
	}
	return s.ScrapeInterval(ctx)
}
