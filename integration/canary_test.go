package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/loadgen"
	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages/gitops"
)

// canaryOpts shape a release pipeline: deploy, then canary, of the image
// given as the parameter "image".
type canaryOpts struct {
	steps, interval, promotion string
	timeout                    string // the canary stage's
	analysis                   string // extra analysis settings, e.g. "failureLimit: 2"
	metrics                    string // a YAML flow list
	prometheus                 string // default: the local Prometheus
	notify                     string
}

func (e *releaseEnv) canaryPipeline(t testing.TB, name string, o canaryOpts) string {
	t.Helper()
	if o.prometheus == "" {
		o.prometheus = e.Prometheus.URL
	}
	if o.promotion == "" {
		o.promotion = "auto"
	}
	if o.timeout == "" {
		o.timeout = "5m"
	}
	if o.metrics == "" {
		o.metrics = "[{name: success-rate, builtin: request-success-rate, min: 95}]"
	}
	if o.notify == "" {
		o.notify = "[]"
	}
	return writeFile(t, e.dir, name, fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: order-service}
on: {manual: {parameters: {image: {}}}}
concurrency: {group: "release-{{ .App }}"}
secrets:
  ARGOCD_TOKEN: {env: TEST_ARGOCD_TOKEN}
stages:
  - name: deploy
    deploy:
      image: "{{ .Params.image }}"
      gitops: &gitops {repo: %q, path: apps/order-service, image: {manifest: deployment-v2.yaml, container: order-service}}
      argocd: &argocd {app: order-service, server: %q, plainText: true, token: ARGOCD_TOKEN, timeout: 2m}
  - name: canary
    timeout: %s
    canary:
      image: "{{ .Params.image }}"
      gitops: *gitops
      argocd: *argocd
      stable: {manifest: deployment-v1.yaml, container: order-service}
      workloads: {namespace: shop, stable: order-service-v1, canary: order-service-v2}
      router: {istio: {virtualService: order-service, stableSubset: v1, canarySubset: v2}}
      steps: %s
      interval: %s
      promotion: %s
      notify: %s
      analysis:
        prometheus: %q
        minRequests: 3
        %s
        metrics: %s
`, e.configRepo, e.ArgoCD.Server, o.timeout, o.steps, o.interval, o.promotion, o.notify, o.prometheus, o.analysis, o.metrics))
}

// release runs pipeline once with `slipway run` for image.
func (e *releaseEnv) release(t testing.TB, pipeline, image string) (string, int) {
	t.Helper()
	cmd := exec.Command(slipwayBin, "run", pipeline, "--data", filepath.Join(e.dir, "data"), "-p", "image="+image,
		"--sha", strings.Repeat("c", 40))
	cmd.Env = append(os.Environ(), "TEST_ARGOCD_TOKEN="+e.ArgoCD.Token)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// steadyLoad sends requests through the mesh until stopped or the test ends.
func (e *releaseEnv) steadyLoad(t testing.TB, rate int) (stop func()) {
	stop = loadgen.Steady("http://"+e.Proxy.Addr+"/", "order-service.shop", rate)
	t.Cleanup(stop)
	return stop
}

// configState reads the config repository's head: the stable and canary
// images and the canary's weight.
func (e *releaseEnv) configState(t testing.TB) (stable, canary string, weight int, head string) {
	t.Helper()
	out, err := exec.Command("git", "-C", e.config.Dir, "pull", "-q", "--ff-only").CombinedOutput()
	if err != nil {
		t.Fatalf("git pull: %v\n%s", err, out)
	}
	app := "apps/order-service"
	stable, err = gitops.GetImage(e.config.Dir, app, gitops.Locator{ManifestFile: "deployment-v1.yaml", Container: "order-service"})
	must(t, err)
	canary, err = gitops.GetImage(e.config.Dir, app, gitops.Locator{ManifestFile: "deployment-v2.yaml", Container: "order-service"})
	must(t, err)
	vs, err := os.ReadFile(filepath.Join(e.config.Dir, app, "virtualservice.yaml"))
	must(t, err)
	_, weight, err = gitops.Weights(string(vs), gitops.Router{Kind: "VirtualService", Name: "order-service", Stable: "v1", Canary: "v2"})
	must(t, err)
	h, _ := exec.Command("git", "-C", e.config.Dir, "rev-parse", "HEAD").Output()
	return stable, canary, weight, strings.TrimSpace(string(h))
}

// liveImage is the image the Deployment runs in the cluster.
func (e *releaseEnv) liveImage(t *testing.T, name string) string {
	t.Helper()
	dep, err := e.client.AppsV1().Deployments("shop").Get(context.Background(), name, metav1.GetOptions{})
	must(t, err)
	return dep.Spec.Template.Spec.Containers[0].Image
}

// hookRecorder is a notification receiver that fails its first delivery.
type hookRecorder struct {
	mu     sync.Mutex
	events []map[string]any
	calls  int
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls == 1 {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	var ev map[string]any
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &ev)
	h.events = append(h.events, ev)
}

func (h *hookRecorder) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.events {
		if k, ok := ev["event"].(string); ok {
			out = append(out, k)
		} else if txt, ok := ev["text"].(string); ok {
			out = append(out, "slack:"+strings.Fields(txt)[1])
		}
	}
	return out
}

// A good version goes 10 → 50 → 100 under analysis and is promoted; a bad
// one is rolled back at its first step, in git and in traffic, with the
// failing measurement as evidence; a canary whose Prometheus is gone is
// rolled back after consecutiveErrorLimit errors, never promoted.
func TestCanaryPromotesGoodAndRollsBackBad(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	e.steadyLoad(t, 40)
	hook := &hookRecorder{}
	receiver := httptest.NewServer(hook)
	defer receiver.Close()
	pipe := e.canaryPipeline(t, "release.yaml", canaryOpts{steps: "[10, 50, 100]", interval: "5s",
		notify: fmt.Sprintf("[{url: %q}, {url: %q, format: slack}]", receiver.URL+"/json", receiver.URL+"/slack")})

	good := pushDemoImage(t, e.reg, "shop/order-service:v2", "v2", 0, 0)
	out, code := e.release(t, pipe, good)
	if code != 0 || !strings.Contains(out, "promoted: the stable workload runs") {
		t.Fatalf("good release: exit %d\n%s", code, out)
	}
	stable, canary, weight, _ := e.configState(t)
	if stable != good || canary != good || weight != 0 {
		t.Errorf("after promotion the config repo has stable %s, canary %s, canary weight %d", stable, canary, weight)
	}
	if live := e.liveImage(t, "order-service-v1"); live != good {
		t.Errorf("the stable Deployment runs %s, want %s", live, good)
	}
	st := openStore(t, filepath.Join(e.dir, "data"))
	ms, _ := st.ListMeasurements(context.Background(), 1)
	rel, _ := st.GetRelease(context.Background(), 1)
	st.Close()
	if len(ms) != 3 || rel == nil || rel.State != "promoted" {
		t.Errorf("good release: %d measurements, release %+v", len(ms), rel)
	}
	for _, m := range ms {
		if m.Outcome != "pass" || m.Requests < 3 || !strings.Contains(m.Query, `destination_workload=~"order-service-v2"`) {
			t.Errorf("measurement %+v", m)
		}
	}

	bad := pushDemoImage(t, e.reg, "shop/order-service:v3", "v3", 0.6, 0)
	out, code = e.release(t, pipe, bad)
	if code != 1 || !strings.Contains(out, "rolled back: traffic back on stable") {
		t.Fatalf("bad release: exit %d\n%s", code, out)
	}
	stable, canary, weight, head := e.configState(t)
	if stable != good || canary != good || weight != 0 {
		t.Errorf("after the rollback the config repo has stable %s, canary %s, canary weight %d; want both %s, 0", stable, canary, weight, good)
	}
	waitFor(t, "the canary Deployment back on the stable image", func() bool { return e.liveImage(t, "order-service-v2") == good })
	res := loadgen.Run(context.Background(), "http://"+e.Proxy.Addr+"/", "order-service.shop", 50, 2*time.Second)
	if res.Codes[200] != res.Sent || res.Bodies["order-service v3 ok"] > 0 {
		t.Errorf("after the rollback traffic still reaches v3: %v %v", res.Codes, res.Bodies)
	}
	st = openStore(t, filepath.Join(e.dir, "data"))
	rbs, _ := st.ListRollbacks(context.Background(), store.RollbackFilter{App: "order-service"})
	runs, _ := st.ListStages(context.Background(), 2)
	st.Close()
	if len(rbs) != 1 {
		t.Fatalf("rollbacks: %d", len(rbs))
	}
	rb := rbs[0]
	if rb.Trigger != "analysis" || rb.Weight != 10 || rb.RollbackCommit != head || rb.ReleaseCommit != runs[0].Outputs["commit"] ||
		!strings.HasSuffix(bad, rb.Digest) || !hasMetric(rb.Evidence, "success-rate") ||
		!rb.RestoredAt.After(rb.DetectedAt) || rb.SourceSHA != strings.Repeat("c", 40) {
		t.Errorf("rollback record %+v\nevidence %+v", rb, rb.Evidence)
	}
	t.Logf("bad release rolled back at %d%%: detected → traffic on stable in %s", rb.Weight, rb.RestoredAt.Sub(rb.DetectedAt))

	// Notifications: started/promoted, started/rolled-back, each also in
	// Slack's format; the receiver's first 503 was retried.
	waitFor(t, "the notifications", func() bool { return len(hook.kinds()) >= 8 })
	got := strings.Join(hook.kinds(), " ")
	for _, want := range []string{"started", "promoted", "rolled-back", "slack:release", "slack:order-service"} {
		if !strings.Contains(got, want) {
			t.Errorf("notifications %q lack %q", got, want)
		}
	}

	// Prometheus gone mid-release: errors, then a rollback — never a promotion.
	e.Prometheus.Stop()
	blind := pushDemoImage(t, e.reg, "shop/order-service:v4", "v4", 0, 0)
	pipe = e.canaryPipeline(t, "blind.yaml", canaryOpts{steps: "[10, 50]", interval: "1s", analysis: "consecutiveErrorLimit: 2"})
	out, code = e.release(t, pipe, blind)
	if code != 1 || !strings.Contains(out, "could not be measured 2 times in a row") || strings.Contains(out, "promoted") {
		t.Fatalf("release without Prometheus: exit %d\n%s", code, out)
	}
	if stable, canary, weight, _ := e.configState(t); stable != good || canary != good || weight != 0 {
		t.Errorf("after the blind rollback: stable %s, canary %s, weight %d", stable, canary, weight)
	}
}

// Compared with the stable and checked every scrape, a canary is rolled
// back within its first step even when that step lasts a minute — at
// once when it answers only 5xx or 300 ms slower, after a few seconds
// when it is 5 % worse than the stable — with the comparison as
// evidence; a healthy canary compared the same way is promoted. (How fast: BenchmarkTimeToRollback.)
func TestCanaryComparedWithTheStable(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	e.steadyLoad(t, 40)
	compare := "[{name: errors-vs-stable, builtin: request-success-rate, compare: stable}]"
	slow := e.canaryPipeline(t, "minute.yaml", canaryOpts{steps: "[10, 50]", interval: "1m", metrics: compare})
	for _, tt := range []struct {
		version  string
		failRate float64
	}{{"v3", 1}, {"v4", 0.05}} {
		image := pushDemoImage(t, e.reg, "shop/order-service:"+tt.version, tt.version, tt.failRate, 0)
		start := time.Now()
		out, code := e.release(t, slow, image)
		if code != 1 || !strings.Contains(out, "errors-vs-stable: the canary is worse than the stable") {
			t.Fatalf("%s (%.0f %% 5xx): exit %d\n%s", tt.version, 100*tt.failRate, code, out)
		}
		st := openStore(t, filepath.Join(e.dir, "data"))
		rbs, _ := st.ListRollbacks(context.Background(), store.RollbackFilter{Limit: 1})
		rel, err := st.GetRelease(context.Background(), rbs[0].RunID)
		st.Close()
		must(t, err)
		m := rbs[0].Evidence.Detail.Measurements
		if rbs[0].Weight != 10 || len(m) != 1 || !strings.Contains(m[0].Message, "canary worse than stable: canary") || !strings.Contains(m[0].Message, "; confidence ") {
			t.Errorf("%s: rollback at %d%% with evidence %+v", tt.version, rbs[0].Weight, m)
		}
		// Decided within the first step, before its minute was over (the
		// step's start, not the release's: the deploy before it takes a
		// time of its own).
		var progress release.Progress
		must(t, json.Unmarshal(rel.Data, &progress))
		if into := m[0].At.Sub(progress.StepStartedAt); progress.StepStartedAt.IsZero() || into >= time.Minute {
			t.Errorf("%s: decided %s into the first step (which began %v), not within its minute", tt.version, into, progress.StepStartedAt)
		}
		t.Logf("%s (%.0f %% 5xx): %s; rolled back %s after the release began", tt.version, 100*tt.failRate, m[0].Message, rbs[0].RestoredAt.Sub(start).Round(100*time.Millisecond))
	}
	// Latency the same way: requests slower than a bucket bound (250 ms).
	latency := e.canaryPipeline(t, "latency.yaml", canaryOpts{steps: "[10, 50]", interval: "1m",
		metrics: "[{name: latency-vs-stable, builtin: request-duration, compare: stable, slowerThan: 250ms}]"})
	out, code := e.release(t, latency, pushDemoImage(t, e.reg, "shop/order-service:v6", "v6", 0, 300))
	if code != 1 || !strings.Contains(out, "latency-vs-stable: the canary is worse than the stable") || !strings.Contains(out, "slower than 250ms") {
		t.Fatalf("a canary 300 ms slower: exit %d\n%s", code, out)
	}
	// A fixed bound, min 95, is checked every scrape too: the canary
	// answering only 5xx is rolled back within its minute-long first step.
	bound := e.canaryPipeline(t, "bound.yaml", canaryOpts{steps: "[10, 50]", interval: "1m",
		metrics: "[{name: success-rate, builtin: request-success-rate, min: 95}]"})
	start := time.Now()
	out, code = e.release(t, bound, pushDemoImage(t, e.reg, "shop/order-service:v7", "v7", 1, 0))
	if code != 1 || !strings.Contains(out, "success-rate: the canary's success rate is below min 95") || !strings.Contains(out, "at most 5.0 % tolerated; confidence") {
		t.Fatalf("a canary answering 5xx under min 95: exit %d\n%s", code, out)
	}
	st := openStore(t, filepath.Join(e.dir, "data"))
	rbs, _ := st.ListRollbacks(context.Background(), store.RollbackFilter{Limit: 1})
	st.Close()
	if rbs[0].Weight != 10 || !rbs[0].DetectedAt.Before(start.Add(time.Minute)) {
		t.Errorf("under min 95: rolled back at %d%%, detected %s after the release began", rbs[0].Weight, rbs[0].DetectedAt.Sub(start))
	}
	t.Logf("a canary answering 5xx under min 95 and a minute-long step: rolled back %s after the release began", rbs[0].RestoredAt.Sub(start).Round(100*time.Millisecond))

	// A healthy canary, compared and bounded, is promoted at its
	// intervals' ends; a metric in dry run that fails every time is
	// measured and explained and changes nothing.
	quick := e.canaryPipeline(t, "quick.yaml", canaryOpts{steps: "[10, 50]", interval: "5s",
		metrics: "[{name: errors-vs-stable, builtin: request-success-rate, compare: stable, min: 95}, {name: trial, query: 'vector(1)', max: 0, dryRun: true}]"})
	good := pushDemoImage(t, e.reg, "shop/order-service:v5", "v5", 0, 0)
	if out, code := e.release(t, quick, good); code != 0 || !strings.Contains(out, "promoted: the stable workload runs") ||
		!strings.Contains(out, "trial: fail (1, max 0) — "+release.DryRunNote) {
		t.Fatalf("a healthy canary compared with the stable, beside a failing metric in dry run: exit %d\n%s", code, out)
	}
}

// hasMetric reports whether a rollback was decided on a measurement of metric.
func hasMetric(ev release.RollbackEvidence, metric string) bool {
	return slices.ContainsFunc(ev.Detail.Measurements, func(m release.Measurement) bool { return m.Metric == metric })
}
