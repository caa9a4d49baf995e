package canary

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/analysis"
)

// DefaultConfidence is how sure a comparison with the stable must be to
// roll back: at most 1 % of healthy canaries are.
const DefaultConfidence = 0.99

// watcher follows the request counters of both workloads over one step:
// the builtin success rate is measured from their deltas since the step
// began (so a 5xx series born during the step counts from its first
// request), and metrics compared with the stable are checked every
// checkEvery, rolling back as soon as the evidence is conclusive.
type watcher struct {
	target      analysis.Target
	start, last analysis.Totals
	every       time.Duration
	seqs        map[string]analysis.Sequence // by metric, for compare: stable
}

// watch starts watching step i, or returns nil when no metric needs the
// counters (or there is no Prometheus).
func (r *release) watch(ctx context.Context) (*watcher, error) {
	if r.querier == nil || !r.countsNeeded() {
		return nil, nil
	}
	w := &watcher{target: r.target(""), every: r.checkEvery(ctx), seqs: map[string]analysis.Sequence{}}
	for _, m := range r.spec.Analysis.Metrics {
		if m.Compare == "stable" {
			w.seqs[m.Name] = analysis.NewSequence(m.Tolerance())
		}
	}
	var err error
	w.start, err = analysis.ReadTotals(ctx, r.querier, w.target)
	w.last = w.start
	return w, err
}

func (r *release) countsNeeded() bool {
	for _, m := range r.spec.Analysis.Metrics {
		if m.Builtin == "request-success-rate" {
			return true
		}
	}
	return false
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
	if s, ok := r.querier.(interface {
		ScrapeInterval(ctx context.Context) (time.Duration, error)
	}); ok {
		if d, err := s.ScrapeInterval(ctx); err == nil && d > 0 {
			return d
		}
	}
	return time.Second
}

// check reads the counters and folds what happened since the last check
// into each comparison.
func (w *watcher) check(ctx context.Context, q analysis.Querier) error {
	now, err := analysis.ReadTotals(ctx, q, w.target)
	if err != nil {
		return err
	}
	counts := now.Since(w.last)
	w.last = now
	for name, s := range w.seqs {
		w.seqs[name] = s.Add(counts, now.At)
	}
	return nil
}

// worse returns the first compared metric (in the pipeline's order) the
// canary is conclusively worse on.
func (w *watcher) worse(metrics []pipeline.Metric, confidence float64) (pipeline.Metric, analysis.Sequence, bool) {
	for _, m := range metrics {
		if s, ok := w.seqs[m.Name]; ok && s.Worse(confidence) {
			return m, s, true
		}
	}
	return pipeline.Metric{}, analysis.Sequence{}, false
}

// measure is metric m over the step so far, from the counters.
func (w *watcher) measure(m pipeline.Metric, minRequests int) analysis.Measurement {
	var cmp *analysis.Sequence
	if s, ok := w.seqs[m.Name]; ok {
		cmp = &s
	}
	return analysis.SuccessRate(m, w.last.Since(w.start), cmp, minRequests, analysis.CounterQueries(w.target), w.last.At)
}

// verdictOn is the rollback the comparison of m decided, stored as a
// failed measurement of step i at weight: the evidence on-call reads.
func (r *release) verdictOn(ctx context.Context, w *watcher, m pipeline.Metric, s analysis.Sequence, i, weight int) verdict {
	meas := w.measure(m, r.spec.Analysis.MinRequests)
	meas.Outcome, meas.At = analysis.Fail, s.PeakAt
	meas.Message = fmt.Sprintf("canary worse than stable: %s", s.Explain("failed"))
	stored := toStored(meas, i, weight)
	id, err := r.run.Release.Measured(ctx, stored)
	if err != nil {
		return r.failed(ctx, fmt.Errorf("storing a measurement: %w", err))
	}
	stored.ID = id
	r.say("  %s", describe(meas))
	meas.ID = id
	d := analysis.Decision{Action: analysis.Rollback, Evidence: []analysis.Measurement{meas},
		Reason: fmt.Sprintf("%s: the canary is worse than the stable (%s)", m.Name, s.Explain("failed"))}
	return r.fromAnalysis(d, []stages.Measurement{stored})
}

// reportScrape says, at the release's start, how often Prometheus
// scrapes and which steps are too short to see enough scrapes (fewer
// than 5 in an interval: measurements over it are noisy or empty).
func (r *release) reportScrape(ctx context.Context) {
	s, ok := r.querier.(interface {
		ScrapeInterval(ctx context.Context) (time.Duration, error)
	})
	if !ok || len(r.spec.Analysis.Metrics) == 0 {
		return
	}
	scrape, err := s.ScrapeInterval(ctx)
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
