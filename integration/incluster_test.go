package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/incluster"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/internal/eventually"
)

// inClusterPipeline is the demo's release, every stage of it in the
// cluster: the service's tests (run) and its build as Pods, the scan
// against the cluster's Trivy server, the GitOps commit synced by Argo CD,
// the canary measured in Prometheus.
const inClusterPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: order-service}
on: {push: {branches: [main]}}
secrets:
  ARGOCD_TOKEN: {env: ARGOCD_TOKEN}
stages:
  - {name: clone, clone: {repo: "__REPO__"}}
  - name: test
    run:
      executor: kubernetes
      image: __BASE__
      commands:
        - test -s svc/app
        - grep -q '"version"' svc/behaviour.json
  - name: build
    build: {context: svc, image: __REGISTRY__/shop/order-service, insecure: true, executor: kubernetes}
  - {name: scan, scan: {failOn: [HIGH, CRITICAL], insecure: true}}
  - name: deploy
    deploy:
      gitops: &gitops {repo: "__CONFIG__", path: apps/order-service, image: {manifest: deployment-v2.yaml, container: order-service}}
      argocd: &argocd {app: order-service, server: "__ARGOCD__", plainText: true, token: ARGOCD_TOKEN, timeout: 2m}
  - name: canary
    timeout: 5m
    canary:
      gitops: *gitops
      argocd: *argocd
      stable: {manifest: deployment-v1.yaml, container: order-service}
      workloads: {namespace: shop, stable: order-service-v1, canary: order-service-v2}
      router: {istio: {virtualService: order-service, stableSubset: v1, canarySubset: v2}}
      steps: [50, 100]
      interval: 3s
      analysis:
        prometheus: "__PROMETHEUS__"
        minRequests: 3
        metrics: [{name: success-rate, builtin: request-success-rate, min: 95}]
`

const inClusterEngine = `apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 0.0.0.0:8080
data: /var/lib/slipway
repositories:
  - {name: order-service, url: "__REPO__", forge: github, webhookSecret: {env: WEBHOOK_SECRET}, pipelines: [{file: order-service.yaml}]}
tokens:
  - {name: admin, role: admin, secret: {env: SLIPWAY_ADMIN_TOKEN}}
`

// Slipway releases from inside the cluster: its image, built by Kaniko
// from the Dockerfile, is deployed with the Trivy server by Argo CD from
// deploy/ (through a local overlay in a config repository); a signed push
// webhook reaches it through its Service; and it releases order-service
// with its tests and build as Pods, its scan against the Trivy server,
// the GitOps commit synced by Argo CD, and a canary promoted on
// Prometheus' measurements — the stage Pods under the build namespace's
// NetworkPolicies, which then keep a stage Pod from the engine, the Trivy
// server, the API server and a metadata service. The Trivy server then
// finds a vulnerable module for an engine without a database, and refuses
// a wrong token.
func TestSlipwayReleasesFromInsideTheCluster(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	ctx := context.Background()
	lc := e.localCluster
	stopLoad := e.steadyLoad(t, 40)
	defer stopLoad()

	// What Pods reach: Argo CD's API and Prometheus, through the node.
	argo, err := lc.Node.Expose(lc.ArgoCD.Server)
	must(t, err)
	prom, err := lc.Node.Expose(strings.TrimPrefix(lc.Prometheus.URL, "http://"))
	must(t, err)
	podRepo := func(url string) string { return strings.Replace(url, lc.Git.URL, lc.PodGit, 1) }

	const adminToken, hookSecret = "admin-t0ken", "hook-s3cret"
	fill := strings.NewReplacer("__REPO__", podRepo(e.appRepo), "__CONFIG__", podRepo(e.configRepo), "__REGISTRY__", lc.PodRegistry,
		"__BASE__", lc.PodBase, "__ARGOCD__", argo, "__PROMETHEUS__", "http://"+prom)
	s, err := incluster.Deploy(ctx, lc.Env, lc.dir, incluster.Options{Source: "..", Slipway: staticSlipway(t),
		Engine: fill.Replace(inClusterEngine), Files: map[string]string{"order-service.yaml": fill.Replace(inClusterPipeline)},
		Env: map[string]string{"WEBHOOK_SECRET": hookSecret, "ARGOCD_TOKEN": lc.ArgoCD.Token}, AdminToken: adminToken,
		Reach: []string{strings.TrimPrefix(lc.PodGit, "http://"), lc.PodRegistry}, Log: t.Logf})
	must(t, err)
	engine := s.URL

	// A push of order-service v2, delivered to the engine's Service.
	sha, err := e.app.Commit("main", "order-service v2", map[string]string{
		"svc/Dockerfile": demoapp.Dockerfile(lc.PodBase),
		"svc/app":        string(appBinary(t, false)), "svc/behaviour.json": demoapp.Behaviour("v2", 0, 0)})
	must(t, err)
	must(t, e.app.Push("main"))
	code, err := deliverPush(engine, hookSecret, "in-cluster-1", podRepo(e.appRepo), strings.Repeat("0", 40), sha)
	must(t, err)
	if code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("the webhook through the Service: HTTP %d", code)
	}

	var run struct {
		Status string `json:"status"`
		Stages []struct {
			Name, Status string
		} `json:"stages"`
	}
	err = eventually.Within(8*time.Minute, func() bool {
		req, _ := http.NewRequest("GET", engine+"/api/v1/runs/1", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&run) == nil && (run.Status == "succeeded" || run.Status == "failed")
	})
	logs := engineLogs(t, engine, adminToken)
	if err != nil || run.Status != "succeeded" {
		t.Fatalf("run 1: %v %+v\n--- run log\n%s\n--- engine pod\n%s", err, run, logs, incluster.EngineLog(ctx, lc.Env, 200))
	}
	for _, want := range []string{"in pod slipway-builds/slipway-1-test-", "this Pod's NetworkPolicies hold: 10.96.0.1:443 refused after", "+ test -s svc/app", "in pod slipway-builds/slipway-1-build-",
		"asking the Trivy server", "CRITICAL 0, HIGH 0", "promoted"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the run's log lacks %q:\n%s", want, logs)
		}
	}
	if l := incluster.EngineLog(ctx, lc.Env, 500); !strings.Contains(l, "--- Pod slipway-") || !strings.Contains(l, "(Running), last 500 lines") ||
		strings.Contains(l, `"reaping stage pods","err"`) {
		t.Errorf("the engine's log through the API (the reaper of ended runs' Pods and Secrets must have its rights):\n%s", l)
	}
	stable, canary, weight, _ := e.configState(t)
	if !strings.Contains(stable, "/shop/order-service@sha256:") || weight != 0 {
		t.Errorf("after the release: stable %s, canary %s, canary weight %d", stable, canary, weight)
	}
	checkBuildFence(t, lc, engine, s.Trivy)

	// The same Trivy server, asked by an engine on this machine: it finds
	// the vulnerable module in an image while the engine's Trivy cache
	// holds no database, and a wrong token is refused with a sentence.
	trivyURL := s.Trivy
	vulnerable, err := registry.PushImage(lc.Registry.Addr+"/shop/vulnerable:1", []registry.File{{Path: "app", Mode: 0o755, Data: appBinary(t, true)}}, nil)
	must(t, err)
	scanOnly := writeFile(t, lc.dir, "scan.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: scan}
stages:
  - {name: scan, scan: {image: "%s/shop/vulnerable@%s", failOn: [HIGH, CRITICAL], insecure: true}}
`, lc.Registry.Addr, vulnerable))
	cache := t.TempDir()
	scan := func(token string) (string, int) {
		cmd := exec.Command(slipwayBin, "run", scanOnly, "--data", filepath.Join(lc.dir, "scan-data"))
		cmd.Env = append(os.Environ(), "SLIPWAY_TRIVY_SERVER="+trivyURL, "SLIPWAY_TRIVY_TOKEN="+token, "SLIPWAY_TRIVY_CACHE="+cache)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := scan(s.TrivyToken)
	if want := "1 finding(s) at a gated severity (failOn: HIGH, CRITICAL): CVE-2021-38561 (HIGH) in golang.org/x/text v0.3.6, fixed in 0.3.7"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("scan against the cluster's Trivy server: exit %d, want 1 and %q\n%s", code, want, out)
	}
	if _, err := os.Stat(filepath.Join(cache, "db", "trivy.db")); err == nil {
		t.Error("the engine's Trivy cache holds a database")
	}
	out, code = scan("wrong")
	if code != 1 || !strings.Contains(out, "the Trivy server at "+trivyURL+" refused this engine's token (trivy.token)") || strings.Contains(out, "CVE-2021-38561") {
		t.Errorf("scan with a wrong token: exit %d\n%s", code, out)
	}
}

// engineLogs is run 1's log as the engine's API serves it (one page).
func engineLogs(t testing.TB, engine, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", engine+"/api/v1/runs/1/logs", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var page struct {
		Lines []struct{ Stage, Text string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, l := range page.Lines {
		fmt.Fprintf(&b, "[%s] %s\n", l.Stage, l.Text)
	}
	return b.String()
}
