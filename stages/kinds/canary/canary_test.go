package canary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/analysis"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/gitops"
)

// memRelease is release.Store in memory, with commands a test queues.
type memRelease struct {
	mu        sync.Mutex
	cp        *release.Checkpoint
	states    []release.State
	ms        []release.Measurement
	rollbacks []release.Rollback
	commands  []release.Request
	given     chan struct{} // closed by queue
}

func (m *memRelease) RequestMade() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.given == nil {
		m.given = make(chan struct{})
	}
	return m.given
}

func (m *memRelease) Checkpoint(context.Context) (*release.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cp, nil
}

func (m *memRelease) Save(_ context.Context, c release.Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cp = &c
	if n := len(m.states); n == 0 || m.states[n-1] != c.State {
		m.states = append(m.states, c.State)
	}
	return nil
}

func (m *memRelease) RecordMeasurement(_ context.Context, x release.Measurement) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x.ID = int64(len(m.ms) + 1)
	m.ms = append(m.ms, x)
	return x.ID, nil
}

func (m *memRelease) Measurements(context.Context) ([]release.Measurement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]release.Measurement(nil), m.ms...), nil
}

func (m *memRelease) RecordRollback(_ context.Context, r release.Rollback) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rollbacks) == 0 {
		m.rollbacks = append(m.rollbacks, r)
	}
	return 1, nil
}

func (m *memRelease) NextRequest(context.Context) (*release.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.commands) == 0 {
		return nil, nil
	}
	c := m.commands[0]
	m.commands = m.commands[1:]
	return &c, nil
}

func (m *memRelease) queue(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commands = append(m.commands, release.Request{Command: release.Command(name), Actor: "alice", At: time.Now()})
	if m.given != nil {
		close(m.given)
		m.given = nil
	}
}

// allStates is every state saved so far, in order.
func (m *memRelease) allStates() []release.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.states)
}

// reason is why the release is where it is, as last saved.
func (m *memRelease) reason() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cp == nil {
		return ""
	}
	return m.cp.Reason
}

func (m *memRelease) state() release.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cp == nil {
		return ""
	}
	return m.cp.State
}

// liveRouter edits the real router file; what it wrote becomes "live"
// when the fake Argo CD syncs.
type liveRouter struct {
	Router
	mu            sync.Mutex
	pending, live int
	applied       []int
}

// appliedWeights is every weight that went live, in order.
func (l *liveRouter) appliedWeights() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.applied)
}

func (l *liveRouter) SetWeight(root string, w int) (bool, error) {
	l.mu.Lock()
	l.pending = w
	l.mu.Unlock()
	return l.Router.SetWeight(root, w)
}

func (l *liveRouter) VerifyWeight(context.Context) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live, nil
}

type fakeArgo struct{ r *liveRouter }

func (f fakeArgo) SyncAndWait(ctx context.Context, app, rev string, _ time.Duration, _ func(string, ...any)) (argocd.Result, error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	if f.r.live != f.r.pending {
		f.r.applied = append(f.r.applied, f.r.pending)
	}
	f.r.live = f.r.pending
	return argocd.Result{Revision: rev}, ctx.Err()
}

func (fakeArgo) Close() error { return nil }

// querier answers every query with the value the test sets.
type querier struct {
	mu  sync.Mutex
	v   float64
	err error
}

func (q *querier) Query(context.Context, string) (float64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.v, q.err
}

type fixture struct {
	rel    *rollout
	mem    *memRelease
	router *liveRouter
	q      *querier
	config *gitserver.WorkTree
	v1, v2 string
}

// newFixture is a release of v2 over a config repository (on a real git
// server) where v1 is stable, with fakes for Argo CD and Prometheus.
func newFixture(t *testing.T, steps []pipeline.Step, promotion string) *fixture {
	t.Helper()
	ctx := context.Background()
	srv, err := gitserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url, _ := srv.CreateRepo("gitops")
	wt, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "wt"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{mem: &memRelease{}, q: &querier{v: 100}, config: wt,
		v1: "reg/shop@sha256:" + strings.Repeat("1", 64), v2: "reg/shop@sha256:" + strings.Repeat("2", 64)}
	if _, err := wt.Commit("main", "init", demoapp.Manifests(f.v1, f.v2, 100, 0)); err != nil {
		t.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	min := 99.0
	spec := pipeline.CanarySpec{
		GitOps:    pipeline.GitOpsSpec{Repo: url, Path: "apps/order-service", Image: pipeline.ImageLocator{Manifest: "deployment-v2.yaml", Container: "order-service"}},
		Stable:    pipeline.ImageLocator{Manifest: "deployment-v1.yaml", Container: "order-service"},
		ArgoCD:    pipeline.ArgoCDSpec{App: "order-service"},
		Workloads: pipeline.Workloads{Namespace: "shop", Stable: "order-service-v1", Canary: "order-service-v2"},
		Router:    pipeline.RouterSpec{Istio: &pipeline.IstioRouter{VirtualService: "order-service", StableSubset: "v1", CanarySubset: "v2"}},
		Steps:     steps, Interval: pipeline.Duration(30 * time.Millisecond), Promotion: promotion,
		Analysis: pipeline.AnalysisSpec{Metrics: []pipeline.Metric{{Name: "sr", Query: "sr", Min: &min}}, InconclusiveLimit: 1},
	}
	split, err := NewRouter(spec.Router, spec.GitOps.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.router = &liveRouter{Router: split}
	run := &stages.Run{ID: 7, Pipeline: "order-service", App: "order-service", Release: f.mem, Log: io.Discard,
		Trigger: pipeline.RunData{SHA: "abc123"}, Outputs: map[string]map[string]string{"deploy": {"digest": "sha256:" + strings.Repeat("2", 64), "commit": "deadbeef"}}}
	f.rel = &rollout{spec: spec, run: run, argo: fakeArgo{f.router}, writer: gitops.WriterFor(spec.GitOps, nil), router: f.router,
		querier: f.q, ref: f.v2, say: func(string, ...any) {}}
	f.rel.image, f.rel.digest, _ = strings.Cut(f.v2, "@")
	f.rel.notify = newNotifier(nil, nil, f.rel.say)
	if err := f.rel.load(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// drive runs the release in the background; commands are queued by act
// when the release reaches a state.
func (f *fixture) drive(ctx context.Context) (stages.Result, error) { return f.rel.drive(ctx) }

func (f *fixture) waitState(t *testing.T, state release.State) {
	t.Helper()
	if err := eventually.Within(5*time.Second, func() bool { return f.mem.state() == state }); err != nil {
		t.Fatalf("the release never became %s (states %v): %v", state, f.mem.allStates(), err)
	}
}

func (f *fixture) images(t *testing.T) (stable, canary string, weight int) {
	t.Helper()
	root := t.TempDir()
	if _, err := gitserver.Clone(f.rel.spec.GitOps.Repo, root); err != nil {
		t.Fatal(err)
	}
	app := f.rel.spec.GitOps.Path
	stable, _ = gitops.GetImage(root, app, gitops.LocatorOf(f.rel.spec.Stable))
	canary, _ = gitops.GetImage(root, app, gitops.LocatorOf(f.rel.spec.GitOps.Image))
	weight, _ = f.router.VerifyWeight(context.Background())
	return stable, canary, weight
}

func steps(ws ...int) []pipeline.Step {
	var out []pipeline.Step
	for _, w := range ws {
		if w == 0 {
			out = append(out, pipeline.Step{Pause: &pipeline.Pause{}})
		} else {
			out = append(out, pipeline.Step{Weight: w})
		}
	}
	return out
}

func TestGoodReleaseIsPromotedStepByStep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 50, 100), "auto")
	res, err := f.drive(context.Background())
	if err != nil || res.Outputs["outcome"] != string(release.Promoted) {
		t.Fatalf("drive: %v %v", res.Outputs, err)
	}
	if got := fmt.Sprint(f.router.appliedWeights()); got != "[10 50 100 0]" {
		t.Errorf("weights applied %s", got)
	}
	if stable, canary, w := f.images(t); stable != f.v2 || canary != f.v2 || w != 0 {
		t.Errorf("after promotion: stable %s canary %s weight %d", stable, canary, w)
	}
	if len(f.mem.ms) != 3 || len(f.mem.rollbacks) != 0 {
		t.Errorf("%d measurements, %d rollbacks", len(f.mem.ms), len(f.mem.rollbacks))
	}
}

func TestBadReleaseIsRolledBackWithEvidence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 50), "auto")
	f.q.v = 71.2
	_, err := f.drive(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rolled back: sr failed 1 time(s)") {
		t.Fatalf("drive: %v", err)
	}
	rb := f.mem.rollbacks[0]
	if rb.Trigger != "analysis" || rb.Weight != 10 || rb.ReleaseCommit != "deadbeef" || rb.SourceSHA != "abc123" || rb.RestoredAt.Before(rb.DetectedAt) {
		t.Errorf("rollback record %+v", rb)
	}
	// The evidence is the deciding measurement as stored — with its step
	// and weight — and the moments of the rollback, in order.
	ev := rb.Evidence
	if ms := ev.Detail.Measurements; len(ms) != 1 || ms[0].Value != 71.2 || ms[0].Weight != 10 || ms[0].Step != 0 || ms[0].ID == 0 ||
		ms[0].Outcome != "fail" || ev.Detail.FailureLimit != 1 || !ms[0].At.Equal(rb.DetectedAt) {
		t.Errorf("evidence %+v", ev.Detail)
	}
	if tm := ev.Timings; !tm.DetectedAt.Equal(rb.DetectedAt) || tm.DecidedAt.Before(tm.DetectedAt) || tm.PushedAt.Before(tm.DecidedAt) || !tm.RestoredAt.Equal(rb.RestoredAt) {
		t.Errorf("timings %+v", tm)
	}
	if stable, canary, w := f.images(t); stable != f.v1 || canary != f.v1 || w != 0 {
		t.Errorf("after rollback: stable %s canary %s weight %d", stable, canary, w)
	}
}

// promote --full skips the remaining steps — but measures first, and a
// failing analysis rolls back instead.
func TestPromoteFullNeverPassesAFailingAnalysis(t *testing.T) {
	t.Parallel()
	for _, failing := range []bool{false, true} {
		f := newFixture(t, steps(10, 0, 50, 100), "auto")
		f.rel.spec.Interval = pipeline.Duration(time.Hour) // only a command ends the step
		if failing {
			f.q.v = 50
		}
		f.mem.queue("promote-full")
		res, err := f.drive(context.Background())
		switch {
		case failing && (err == nil || len(f.mem.rollbacks) != 1):
			t.Errorf("failing analysis: promoted anyway (%v)", res.Outputs)
		case !failing && (err != nil || res.Outputs["outcome"] != string(release.Promoted) || fmt.Sprint(f.router.appliedWeights()) != "[10 0]"):
			t.Errorf("passing analysis: %v %v, weights %v", res.Outputs, err, f.router.appliedWeights())
		}
	}
}

// A gate waits for a person; inconclusive analysis pauses; abort rolls back.
func TestGatesWaitForPeople(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 0, 50), "manual")
	done := make(chan error, 1)
	go func() { _, err := f.drive(context.Background()); done <- err }()
	f.waitState(t, release.Paused) // the pause step
	f.mem.queue("resume")
	f.waitState(t, release.Progressing)
	f.waitState(t, release.Paused) // promotion: manual
	if f.mem.reason() != "promotion: manual — run slipway promote order-service" {
		t.Errorf("paused because %q", f.mem.reason())
	}
	f.mem.queue("promote")
	if err := <-done; err != nil || f.mem.state() != release.Promoted {
		t.Fatalf("after promote: %v, %s", err, f.mem.state())
	}

	f = newFixture(t, steps(10, 50), "auto")
	f.q.err = analysis.ErrNoData // no traffic
	go func() { _, err := f.drive(context.Background()); done <- err }()
	f.waitState(t, release.Paused)
	if !strings.Contains(f.mem.reason(), "inconclusive") || fmt.Sprint(f.router.appliedWeights()) != "[10]" {
		t.Errorf("paused at weights %v (states %v)", f.router.appliedWeights(), f.mem.allStates())
	}
	f.mem.queue("abort")
	if err := <-done; err == nil || f.mem.rollbacks[0].Trigger != "manual" || f.mem.rollbacks[0].Actor != "alice" {
		t.Fatalf("after abort: %v %+v", err, f.mem.rollbacks)
	}
}

// A cancelled run rolls back on a context of its own; an engine shutting
// down leaves the release where it stands, and the next attempt carries on
// from the checkpoint.
func TestCancelRollsBackShutdownResumes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 50), "auto")
	f.rel.spec.Interval = pipeline.Duration(time.Hour)
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() { _, err := f.drive(ctx); done <- err }()
	f.waitState(t, release.Progressing)
	f.waitWeight(t, func() bool { return f.router.VerifyWeightNow() == 10 })
	cancel(stages.ErrShutdown)
	if err := <-done; !errors.Is(err, context.Canceled) || len(f.mem.rollbacks) != 0 || f.mem.state() != release.Progressing {
		t.Fatalf("shutdown: %v, %d rollbacks, state %s", err, len(f.mem.rollbacks), f.mem.state())
	}
	// The next attempt: same checkpoint; now the run is cancelled.
	f.rel.cp, f.rel.notes = release.Checkpoint{}, notes{}
	if err := f.rel.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancelCause(context.Background())
	go func() { _, err := f.drive(ctx); done <- err }()
	f.waitWeight(t, func() bool { f.router.mu.Lock(); defer f.router.mu.Unlock(); return len(f.router.applied) >= 1 })
	cancel(errors.New("cancelled by bob"))
	err := <-done
	if err == nil || len(f.mem.rollbacks) != 1 || !strings.Contains(f.mem.rollbacks[0].Reason, "cancelled by bob") {
		t.Fatalf("cancel: %v %+v", err, f.mem.rollbacks)
	}
	if _, _, w := f.images(t); w != 0 {
		t.Errorf("weight after the cancel's rollback: %d", w)
	}
}

// waitWeight waits (at most 5 s) until cond holds.
func (f *fixture) waitWeight(t *testing.T, cond func() bool) {
	t.Helper()
	if err := eventually.Within(5*time.Second, cond); err != nil {
		t.Fatalf("weights applied %v: %v", f.router.appliedWeights(), err)
	}
}

// VerifyWeightNow is the live weight, for tests.
func (l *liveRouter) VerifyWeightNow() int {
	w, _ := l.VerifyWeight(context.Background())
	return w
}

// A rollback interrupted by a crash is completed by the next attempt, from
// its checkpoint, with the evidence it had.
func TestRollbackInterruptedByACrashIsCompleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 50), "auto")
	f.rel.notes.Pending = &verdict{Action: rollback, Trigger: "alert", Actor: "HighErrorRate", Reason: "alert HighErrorRate fired",
		Evidence: &release.RollbackDetail{Alert: release.Alert{Labels: map[string]string{"alertname": "HighErrorRate"}}}, DetectedAt: time.Now()}
	must(t, f.rel.move(context.Background(), release.Start, 0, 0, "started"))
	must(t, f.rel.move(context.Background(), release.Failed, 0, 10, "alert HighErrorRate fired"))
	// The crash: a new attempt starts from what the store holds.
	f.rel.cp, f.rel.notes = release.Checkpoint{}, notes{}
	must(t, f.rel.load(context.Background()))
	_, err := f.drive(context.Background())
	if err == nil || len(f.mem.rollbacks) != 1 || f.mem.rollbacks[0].Actor != "HighErrorRate" || f.mem.state() != release.RolledBack {
		t.Fatalf("after the restart: %v %+v %s", err, f.mem.rollbacks, f.mem.state())
	}
	if stable, canary, _ := f.images(t); stable != f.v1 || canary != f.v1 {
		t.Errorf("after the completed rollback: stable %s canary %s", stable, canary)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// counters is a Prometheus whose Istio request counters grow with time:
// the stable gets 36 requests/s, the canary 4, and the canary's answers
// are 5xx when bad is set (from the moment it is set).
type counters struct {
	start time.Time
	bad   atomic.Bool
	since atomic.Int64 // unix nanos the canary turned bad
}

func (c *counters) Query(_ context.Context, q string) (float64, error) {
	secs := time.Since(c.start).Seconds()
	canary := strings.Contains(q, `destination_workload=~"order-service-v2"`)
	errs := strings.Contains(q, "response_code")
	switch {
	case strings.Contains(q, "increase(") || strings.Contains(q, "rate("):
		return 0, fmt.Errorf("a range query where counters were expected: %s", q)
	case (strings.Contains(q, `le="300"`) || strings.Contains(q, `le="500"`)) && canary && c.bad.Load(): // a slow canary: none within 300 ms since it turned bad
		return math.Floor(4 * time.Unix(0, c.since.Load()).Sub(c.start).Seconds()), nil
	case strings.Contains(q, "_bucket") || strings.Contains(q, "_count"):
		if canary {
			return math.Floor(4 * secs), nil
		}
		return math.Floor(36 * secs), nil
	case canary && errs && c.bad.Load():
		return math.Floor(4 * time.Since(time.Unix(0, c.since.Load())).Seconds()), nil
	case errs:
		return 0, analysis.ErrNoData // no 5xx series yet: born when the first 5xx is answered
	case canary:
		return math.Floor(4 * secs), nil
	}
	return math.Floor(36 * secs), nil
}

// Compared with the stable and checked continuously — by ratio or by an
// absolute margin — a canary answering 5xx is rolled back within its
// first minute-long step, with the comparison as evidence; a healthy one
// is promoted.
func TestCanaryWorseThanStableIsRolledBackMidStep(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		bad               bool
		increase, because string
	}{
		{true, "", "ratio ∞ (stable had none)"},
		{true, "0.5pp", "difference +100.0 points, tolerated +0.5 points"},
		{false, "", ""},
		{false, "0.5pp", ""},
	} {
		bad := tt.bad
		f := newFixture(t, steps(10, 50), "auto")
		q := &counters{start: time.Now()}
		if bad {
			q.since.Store(time.Now().Add(time.Second).UnixNano())
			q.bad.Store(true)
		}
		f.rel.querier = q
		f.rel.spec.Interval = pipeline.Duration(time.Minute)
		if !bad {
			f.rel.spec.Interval = pipeline.Duration(1500 * time.Millisecond)
		}
		f.rel.spec.Analysis = pipeline.AnalysisSpec{CheckEvery: pipeline.Duration(100 * time.Millisecond),
			Metrics: []pipeline.Metric{{Name: "errors", Builtin: "request-success-rate", Compare: "stable", MaxIncrease: tt.increase}}}
		res, err := f.drive(context.Background())
		if !bad {
			if err != nil || res.Outputs["outcome"] != string(release.Promoted) {
				t.Fatalf("a healthy canary: %v %v (%s)", err, res.Outputs, f.mem.reason())
			}
			ms, _ := f.mem.Measurements(context.Background())
			if len(ms) != 2 || ms[0].Outcome != "pass" || ms[0].Value != 100 || !strings.Contains(ms[0].Message, "canary 0 of") {
				t.Errorf("healthy measurements: %+v", ms)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "errors: the canary is worse than the stable") {
			t.Fatalf("a bad canary: %v", err)
		}
		ev := f.mem.rollbacks[0].Evidence.Detail.Measurements
		if len(ev) != 1 || ev[0].Outcome != "fail" || !strings.Contains(ev[0].Message, tt.because) || !strings.Contains(ev[0].Message, "; confidence ") {
			t.Errorf("evidence: %+v", ev)
		}
		// Decided mid-step, not at the end of the minute-long interval.
		if end := f.rel.notes.StepStartedAt.Add(time.Minute); ev[0].Weight != 10 || !ev[0].At.Before(end) {
			t.Errorf("decided at %v at weight %d; the first step ends at %v", ev[0].At, ev[0].Weight, end)
		}
	}
}

// A canary slower than the stable — its requests over a bucket bound the
// stable's are under — is rolled back mid-step the same way.
func TestSlowCanaryIsRolledBackMidStep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 50), "auto")
	q := &counters{start: time.Now()}
	q.since.Store(time.Now().Add(500 * time.Millisecond).UnixNano())
	q.bad.Store(true)
	f.rel.querier = q
	f.rel.spec.Interval = pipeline.Duration(time.Minute)
	f.rel.spec.Analysis = pipeline.AnalysisSpec{CheckEvery: pipeline.Duration(100 * time.Millisecond),
		Metrics: []pipeline.Metric{{Name: "latency", Builtin: "request-duration", Compare: "stable", SlowerThan: pipeline.Duration(300 * time.Millisecond)}}}
	_, err := f.drive(context.Background())
	if err == nil || !strings.Contains(err.Error(), "latency: the canary is worse than the stable") || !strings.Contains(err.Error(), "slower than 300ms") {
		t.Fatalf("a slow canary: %v", err)
	}
	ev := f.mem.rollbacks[0].Evidence.Detail.Measurements
	if len(ev) != 1 || !strings.Contains(ev[0].Query, `istio_request_duration_milliseconds_bucket`) || !strings.Contains(ev[0].Query, `le="300"`) {
		t.Errorf("evidence: %+v", ev)
	}
}

// A metric of the pipeline's own counters (requests and bad, templated
// over .Workload) is compared with the stable the same way.
func TestOwnCountersAreComparedWithTheStable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, steps(10, 50), "auto")
	start := time.Now()
	f.rel.querier = queryFunc(func(q string) (float64, error) {
		secs := time.Since(start).Seconds()
		canary := strings.Contains(q, `version="order-service-v2"`)
		switch {
		case strings.HasPrefix(q, "sum(checkout_requests_total") && canary:
			return math.Floor(4 * secs), nil
		case strings.HasPrefix(q, "sum(checkout_requests_total"):
			return math.Floor(36 * secs), nil
		case strings.HasPrefix(q, "sum(checkout_failures_total") && canary:
			return math.Floor(4 * secs), nil // every canary checkout fails
		case strings.HasPrefix(q, "sum(checkout_failures_total"):
			return 0, analysis.ErrNoData
		}
		return 0, fmt.Errorf("unexpected query %s", q)
	})
	f.rel.spec.Interval = pipeline.Duration(time.Minute)
	f.rel.spec.Analysis = pipeline.AnalysisSpec{CheckEvery: pipeline.Duration(100 * time.Millisecond),
		Metrics: []pipeline.Metric{{Name: "checkouts", Compare: "stable",
			Requests: `sum(checkout_requests_total{version="{{ .Workload }}"})`, Bad: `sum(checkout_failures_total{version="{{ .Workload }}"})`}}}
	_, err := f.drive(context.Background())
	if err == nil || !strings.Contains(err.Error(), "checkouts: the canary is worse than the stable") || !strings.Contains(err.Error(), "requests bad (100.0 %)") {
		t.Fatalf("own counters: %v", err)
	}
}

// Fixed bounds are checked within the step too: a canary answering 5xx
// under a min success rate, one slower than a p99 max that is a bucket
// bound, and one whose own bad share is above its max are rolled back
// within the first minute-long step, with the counts, the share, the
// bound and the confidence; a healthy one is promoted at the interval's
// end; a failing metric in dry run changes nothing.
func TestFixedBoundsAreCheckedWithinTheStep(t *testing.T) {
	t.Parallel()
	ninetyFive, fiveHundred, one := 95.0, 500.0, 1.0
	rate := pipeline.Metric{Name: "errors", Builtin: "request-success-rate", Min: &ninetyFive}
	for _, tt := range []struct {
		name    string
		bad     bool
		metrics []pipeline.Metric
		because []string // in the rollback's reason; none: promoted
	}{
		{"5xx under min 95", true, []pipeline.Metric{rate},
			[]string{"errors: the canary's success rate is below min 95", "requests failed (5xx) (100.0 %), at most 5.0 % tolerated; confidence 99.", "into the step, checked every 100ms"}},
		{"slow under a p99 max of 500 ms", true, []pipeline.Metric{{Name: "latency", Builtin: "request-duration", Max: &fiveHundred}},
			[]string{"latency: the canary's p99 is above max 500 ms", "requests slower than 500 ms (", "at most 1.0 % tolerated"}},
		{"own bad share over max 1", true, []pipeline.Metric{{Name: "own", Max: &one,
			Requests: `sum(istio_requests_total{destination_workload=~"{{ .Workload }}"})`, Bad: `sum(istio_requests_total{destination_workload=~"{{ .Workload }}",response_code=~"5.."})`}},
			[]string{"own: the canary's bad share is above max 1 %", "at most 1.0 % tolerated"}},
		{"healthy under min 95", false, []pipeline.Metric{rate}, nil},
		{"5xx under a metric in dry run", true, []pipeline.Metric{{Name: "errors", Builtin: "request-success-rate", Min: &ninetyFive, DryRun: true}}, nil},
	} {
		f := newFixture(t, steps(10, 50), "auto")
		q := &counters{start: time.Now()}
		if tt.bad {
			q.since.Store(time.Now().Add(500 * time.Millisecond).UnixNano())
			q.bad.Store(true)
		}
		f.rel.querier = q
		f.rel.spec.Interval = pipeline.Duration(time.Minute)
		if tt.because == nil {
			f.rel.spec.Interval = pipeline.Duration(1500 * time.Millisecond)
		}
		f.rel.spec.Analysis = pipeline.AnalysisSpec{CheckEvery: pipeline.Duration(100 * time.Millisecond), Metrics: tt.metrics}
		res, err := f.drive(context.Background())
		if tt.because == nil {
			if err != nil || res.Outputs["outcome"] != string(release.Promoted) {
				t.Errorf("%s: %v %v (%s)", tt.name, err, res.Outputs, f.mem.reason())
			}
			ms, _ := f.mem.Measurements(context.Background())
			if tt.metrics[0].DryRun && (len(ms) != 2 || ms[0].Outcome != "fail" || !strings.HasPrefix(ms[0].Message, "dry run, never changes the outcome")) {
				t.Errorf("%s: measurements %+v", tt.name, ms)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: promoted", tt.name)
			continue
		}
		for _, want := range tt.because {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v lacks %q", tt.name, err, want)
			}
		}
		ev := f.mem.rollbacks[0].Evidence.Detail.Measurements
		if end := f.rel.notes.StepStartedAt.Add(time.Minute); len(ev) != 1 || ev[0].Outcome != "fail" || ev[0].Weight != 10 || !ev[0].At.Before(end) || ev[0].Requests < 1 {
			t.Errorf("%s: evidence %+v; the first step ends at %v", tt.name, ev, end)
		}
	}
}

type queryFunc func(q string) (float64, error)

func (f queryFunc) Query(_ context.Context, q string) (float64, error) { return f(q) }
