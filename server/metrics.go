package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipwayci/slipway/runner/store"
)

// Metrics is the engine's own /metrics. It is a runner.Observer and
// counts webhook deliveries by result.
type Metrics struct {
	reg           *prometheus.Registry
	stageDuration *prometheus.HistogramVec
	runsFinished  *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	statuses      *prometheus.CounterVec
	logsDropped   prometheus.Counter
	missedPushes  *prometheus.CounterVec
}

// Counts is what the metrics read from the store at each scrape.
type Counts interface {
	store.StatusCounter
	CountRollbacks(ctx context.Context) ([]store.RollbackCount, error)
}

// NewMetrics registers the engine's metrics; runs by status, the queue
// depth and rollbacks are read from counts at each scrape.
func NewMetrics(counter Counts) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "slipway_stage_duration_seconds", Help: "Duration of stage attempts, by kind and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"kind", "status"}),
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_runs_finished_total", Help: "Runs that ended in this engine, by status (queued: handed back at shutdown).",
		}, []string{"status"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_webhook_deliveries_total", Help: "Webhook deliveries, by forge and result.",
		}, []string{"forge", "result"}),
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_commit_status_requests_total", Help: "Commit statuses sent to forges, by forge and result (ok, retried, failed).",
		}, []string{"forge", "result"}),
		logsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "slipway_log_lines_dropped_total", Help: "Stage log lines lost because the store refused them.",
		}),
		missedPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_missed_pushes_found_total", Help: "Pushes found by listing a repository's heads, whose deliveries never arrived, by repository.",
		}, []string{"repository"}),
	}
	m.reg.MustRegister(m.stageDuration, m.runsFinished, m.webhooks, m.statuses, m.logsDropped, m.missedPushes, runsCollector{counter},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StageFinished observes a stage attempt.
func (m *Metrics) StageFinished(kind string, status store.StageStatus, d time.Duration) {
	m.stageDuration.WithLabelValues(kind, string(status)).Observe(d.Seconds())
}

// RunFinished counts a run's end.
func (m *Metrics) RunFinished(status store.RunStatus) {
	m.runsFinished.WithLabelValues(string(status)).Inc()
}

// LogLinesDropped counts log lines the store refused.
func (m *Metrics) LogLinesDropped(n int) { m.logsDropped.Add(float64(n)) }

// MissedPush counts a push found by listing repository's heads.
func (m *Metrics) MissedPush(repository string) {
	m.missedPushes.WithLabelValues(repository).Inc()
}

// Webhook counts one delivery's result.
func (m *Metrics) Webhook(forge, result string) {
	m.webhooks.WithLabelValues(forge, result).Inc()
}

// CommitStatus counts one commit status request's result.
func (m *Metrics) CommitStatus(forge, result string) {
	m.statuses.WithLabelValues(forge, result).Inc()
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var (
	runsDesc  = prometheus.NewDesc("slipway_runs", "Runs in the store, by status.", []string{"status"}, nil)
	queueDesc = prometheus.NewDesc("slipway_queue_depth", "Runs waiting to start.", nil, nil)
	rbDesc    = prometheus.NewDesc("slipway_rollbacks_total", "Canary rollbacks in the store, by app and trigger (analysis, manual, alert, error).", []string{"app", "trigger"}, nil)
)

// runsCollector reads run and rollback counts from the store at scrape time.
type runsCollector struct{ counter Counts }

func (c runsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsDesc
	ch <- queueDesc
	ch <- rbDesc
}

func (c runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.counter.CountRuns(ctx, nil)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runsDesc, err)
		return
	}
	for _, s := range []store.RunStatus{store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCancelled} {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(counts[store.RunQueued]))
	rbs, err := c.counter.CountRollbacks(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(rbDesc, err)
		return
	}
	for _, r := range rbs {
		ch <- prometheus.MustNewConstMetric(rbDesc, prometheus.CounterValue, float64(r.N), r.App, r.Trigger)
	}
}
