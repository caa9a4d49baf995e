package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/alertmanager"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/runner/store"
)

// canaryErrorsRule is a real alerting rule: the canary answers 5xx.
const canaryErrorsRule = `groups:
  - name: order-service
    rules:
      - alert: OrderServiceCanaryErrors
        expr: sum(rate(istio_requests_total{destination_workload="order-service-v2",destination_workload_namespace="shop",response_code=~"5.."}[5s])) > 0
        labels: {app: order-service, severity: page}
        annotations: {summary: "order-service canary answers 5xx"}
`

// controlEnv is a release environment with `slipway serve` in front.
type controlEnv struct {
	*releaseEnv
	eng    *engineProc
	config string
}

func (c *controlEnv) trigger(t *testing.T, image string) int64 {
	t.Helper()
	out, code := cli(t, "trigger", "order-service", "-p", "image="+image, "--server", c.eng.url, "--token", "rm-token", "-o", "json")
	if code != 0 {
		t.Fatalf("trigger: %d\n%s", code, out)
	}
	var run struct{ ID int64 }
	must(t, jsonUnmarshal(out, &run))
	return run.ID
}

// releaseState waits until the in-flight release of order-service is in
// state (and its reason contains why), and returns its weight.
func (c *controlEnv) waitRelease(t *testing.T, state, why string) int {
	t.Helper()
	var got []struct {
		Run    int64
		State  string
		Weight int
		Reason string
	}
	err := eventually.Within(2*time.Minute, func() bool {
		c.eng.api(t, "GET", "/api/v1/releases?app=order-service&inFlight=true", "view-token", &got)
		return len(got) > 0 && got[0].State == state && strings.Contains(got[0].Reason, why)
	})
	if err != nil {
		t.Fatalf("the release never became %s (%q): %v; last %+v\n%s", state, why, err, got, c.eng.out.String())
	}
	return got[0].Weight
}

func (c *controlEnv) waitRun(t *testing.T, id int64, status string) {
	t.Helper()
	var run struct{ Status, Reason string }
	eventually.Within(3*time.Minute, func() bool {
		c.eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", id), "view-token", &run)
		return run.Status == status || run.Status == "succeeded" || run.Status == "failed" || run.Status == "cancelled"
	})
	if run.Status == status {
		return
	}
	out, _ := cli(t, "logs", fmt.Sprint(id), "--server", c.eng.url, "--token", "view-token")
	t.Fatalf("run %d is %s (%s), want %s\n%s", id, run.Status, run.Reason, status, out)
}

// startControl makes e's release pipeline a canary [20, 50] with a manual
// promotion and starts `slipway serve` in front of it (controlConfig).
func startControl(t *testing.T, e *releaseEnv) *controlEnv {
	t.Helper()
	config := e.controlConfig(t, "slipway.yaml", "data: data")
	return &controlEnv{releaseEnv: e, eng: e.serve(t, config), config: config}
}

// serve starts `slipway serve` with config and the Argo CD token its
// pipelines name ({env: TEST_ARGOCD_TOKEN}), given to that engine alone.
func (e *releaseEnv) serve(t testing.TB, config string) *engineProc {
	t.Helper()
	return startServeEnv(t, []string{"TEST_ARGOCD_TOKEN=" + e.ArgoCD.Token}, config)
}

// controlConfig makes e's release pipeline a canary [20, 50] with a manual
// promotion and writes an engine config named name, storing its state as
// storage says (data:, database:), with tokens rm (release-manager),
// viewer and ops (admin), and an Alertmanager receiver.
func (e *releaseEnv) controlConfig(t *testing.T, name, storage string) string {
	t.Helper()
	e.canaryPipeline(t, "release.yaml", canaryOpts{steps: "[20, 50]", interval: "2s", promotion: "manual",
		analysis: "inconclusiveLimit: 1", timeout: "10m"})
	for name, v := range map[string]string{"hook-secret": "s", "rm-token": "rm-token", "view-token": "view-token", "ops-token": "ops-token", "am-token": "am-secret"} {
		writeFile(t, e.dir, name, v)
	}
	return writeFile(t, e.dir, name, `apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
`+storage+`
repositories:
  - {name: order-service, url: "https://git.example.com/shop/order-service.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: release.yaml}]}
tokens:
  - {name: rm, role: release-manager, secret: {file: rm-token}}
  - {name: viewer, role: viewer, secret: {file: view-token}}
  - {name: ops, role: admin, secret: {file: ops-token}}
alertmanager: {bearerToken: {file: am-token}}
`)
}

// People steer a release through the API and CLI — a manual gate promoted
// by a release manager (a viewer is refused and audited), a release that
// survives its engine being killed mid-step and is then aborted — and a
// real alert, evaluated by Prometheus and routed by Alertmanager, rolls
// back a release that stood paused for want of traffic. An alert metric
// fails the analysis of a canary that answers errors.
func TestPeopleAndAlertsSteerReleases(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	stopLoad := e.steadyLoad(t, 40)
	c := startControl(t, e)
	config := c.config

	// A manual gate: the viewer is refused, the release manager promotes.
	v2 := pushDemoImage(t, e.reg, "shop/order-service:v2", "v2", 0, 0)
	run1 := c.trigger(t, v2)
	if w := c.waitRelease(t, "paused", "promotion: manual"); w != 50 {
		t.Errorf("paused at %d%%, want 50%%", w)
	}
	if code := c.eng.api(t, "POST", "/api/v1/apps/order-service/promote", "view-token", nil); code != 403 {
		t.Errorf("promote with a viewer token: %d, want 403", code)
	}
	if out, code := cli(t, "promote", "order-service", "--server", c.eng.url, "--token", "rm-token"); code != 0 || !strings.Contains(out, "promote sent") {
		t.Fatalf("slipway promote: %d\n%s", code, out)
	}
	c.waitRun(t, run1, "succeeded")
	if stable, canary, weight, _ := e.configState(t); stable != v2 || canary != v2 || weight != 0 {
		t.Errorf("after promote: stable %s, canary %s, weight %d", stable, canary, weight)
	}
	var audit struct {
		Entries []struct{ Action, Actor, Target string }
	}
	c.eng.api(t, "GET", "/api/v1/audit", "ops-token", &audit)
	if got := fmt.Sprint(audit.Entries); !strings.Contains(got, "release.promote rm app/order-service") || !strings.Contains(got, "denied viewer POST /api/v1/apps/{app}/promote app/order-service") {
		t.Errorf("audit log: %s", got)
	}

	// The engine is killed mid-step; restarted, the release carries on; then it is aborted.
	v5 := pushDemoImage(t, e.reg, "shop/order-service:v5", "v5", 0, 0)
	run2 := c.trigger(t, v5)
	c.waitRelease(t, "progressing", "step 1: 20%")
	c.eng.killHard(t)
	c.eng = c.serve(t, config)
	c.waitRelease(t, "paused", "promotion: manual")
	if out, code := cli(t, "abort", "order-service", "--reason", "checkout looks slow", "--server", c.eng.url, "--token", "rm-token"); code != 0 {
		t.Fatalf("slipway abort: %d\n%s", code, out)
	}
	c.waitRun(t, run2, "failed")
	if stable, canary, weight, _ := e.configState(t); stable != v2 || canary != v2 || weight != 0 {
		t.Errorf("after abort: stable %s, canary %s, weight %d", stable, canary, weight)
	}
	out, code := cli(t, "rollbacks", "--app", "order-service", "--since", "1h", "--server", c.eng.url, "--token", "view-token")
	if code != 0 || !strings.Contains(out, "aborted by rm") {
		t.Errorf("slipway rollbacks: %d\n%s", code, out)
	}

	// No traffic: inconclusive, paused — not promoted. Then a real alert rolls it back.
	stopLoad()
	waitFor(t, "the mesh to see no requests for a while", func() bool {
		n, ok := promQuery(t, e.Prometheus.URL, `sum(increase(istio_requests_total{destination_workload_namespace="shop"}[3s]))`)
		return ok && n == 0
	})
	v6 := pushDemoImage(t, e.reg, "shop/order-service:v6", "v6", 0.7, 0)
	run3 := c.trigger(t, v6)
	c.waitRelease(t, "paused", "inconclusive")
	if stable, _, _, _ := e.configState(t); stable != v2 {
		t.Fatalf("an inconclusive release was promoted: stable %s", stable)
	}
	am, err := alertmanager.Start(context.Background(), filepath.Join(e.dir, "alertmanager"), c.eng.url+"/hooks/alertmanager", "am-secret")
	must(t, err)
	t.Cleanup(am.Stop)
	must(t, e.Prometheus.Reconfigure(context.Background(), canaryErrorsRule, am.Addr))
	e.steadyLoad(t, 40) // stopped by the test's cleanup
	c.waitRun(t, run3, "failed")
	st := openStore(t, filepath.Join(e.dir, "data"))
	rbs, _ := st.ListRollbacks(context.Background(), store.RollbackFilter{})
	st.Close()
	if len(rbs) != 2 || rbs[0].Trigger != "alert" || rbs[0].Actor != "OrderServiceCanaryErrors" ||
		rbs[0].Evidence.Detail.Annotations["summary"] != "order-service canary answers 5xx" || rbs[1].Trigger != "manual" || rbs[1].Actor != "rm" {
		t.Errorf("rollbacks: %+v", rbs)
	}
	out, code = cli(t, "rollbacks", "show", fmt.Sprint(rbs[0].ID), "--server", c.eng.url, "--token", "view-token")
	if code != 0 || !strings.Contains(out, "alert OrderServiceCanaryErrors firing") || !strings.Contains(out, "traffic back to stable in") {
		t.Errorf("rollbacks show: %d\n%s", code, out)
	}

	// The alert as an analysis metric: the canary's errors fail the step.
	am.Stop()
	must(t, e.Prometheus.Reconfigure(context.Background(), canaryErrorsRule, ""))
	e.canaryPipeline(t, "release.yaml", canaryOpts{steps: "[20, 50]", interval: "4s",
		metrics: "[{name: error-budget, alert: OrderServiceCanaryErrors}]", timeout: "5m"})
	must(t, c.eng.cmd.Process.Signal(syscall.SIGTERM))
	c.eng.waitExit(t)
	c.eng = c.serve(t, config)
	v7 := pushDemoImage(t, e.reg, "shop/order-service:v7", "v7", 0.7, 0)
	run4 := c.trigger(t, v7)
	c.waitRun(t, run4, "failed")
	out, _ = cli(t, "rollbacks", "-o", "json", "--server", c.eng.url, "--token", "view-token")
	if !strings.Contains(out, `"trigger": "analysis"`) || !strings.Contains(out, "error-budget") {
		t.Errorf("the alert metric's rollback:\n%s", out)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
