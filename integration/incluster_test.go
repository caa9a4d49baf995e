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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/slipwayimage"
	"github.com/slipwayci/slipway/integration/trivydb"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/stages/tools"
)

// slipwayImage builds Slipway's image from the Dockerfile with Kaniko (as
// make image does) into the environment's registry.
func slipwayImage(t testing.TB, lc *localCluster) string {
	t.Helper()
	ref, err := slipwayimage.Build(context.Background(), slipwayimage.Options{Dockerfile: "../Dockerfile", Slipway: staticSlipway(t),
		Trivy: tools.Trivy(), Kaniko: tools.Kaniko(), Registry: lc.Registry.Addr, Ref: "slipway/slipway:test"})
	must(t, err)
	return ref
}

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

// The local overlay of deploy/: the test's images, the stage Pods'
// images, the secrets the engine config names, the Trivy server offline.
const inClusterOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
images:
  - {name: ghcr.io/slipwayci/slipway, newName: __SLIPWAY_REPO__, digest: __SLIPWAY_DIGEST__}
  - {name: ghcr.io/aquasecurity/trivy, newName: __TRIVY_REPO__, newTag: __TRIVY_TAG__}
configMapGenerator:
  - name: slipway-config
    namespace: slipway
    behavior: replace
    files: [slipway.yaml, order-service.yaml]
patches:
  - target: {kind: Deployment, name: trivy}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: --skip-db-update}
  - target: {kind: Deployment, name: slipway}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: SLIPWAY_HELPER_IMAGE, value: "__SLIPWAY_IMAGE__"}}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: SLIPWAY_KANIKO_IMAGE, value: "__KANIKO_IMAGE__"}}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: SLIPWAY_TRIVY_SERVER, value: "__TRIVY_URL__"}}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: WEBHOOK_SECRET, valueFrom: {secretKeyRef: {name: slipway-secrets, key: webhook-secret}}}}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: ARGOCD_TOKEN, valueFrom: {secretKeyRef: {name: slipway-secrets, key: argocd-token}}}}
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
// Prometheus' measurements. The Trivy server then finds a vulnerable
// module for an engine without a database, and refuses a wrong token.
func TestSlipwayReleasesFromInsideTheCluster(t *testing.T) {
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

	// Images: Slipway (also the stage Pods' helper), Kaniko, Trivy.
	began := time.Now()
	slipway := slipwayImage(t, lc)
	t.Logf("slipway image built with Kaniko in %s: %s", time.Since(began).Round(time.Millisecond), slipway)
	kaniko := lc.Registry.Addr + "/slipway/kaniko:" + tools.Version("KANIKO")
	_, err = registry.PushKaniko(kaniko, tools.Kaniko())
	must(t, err)
	trivyRepo, trivyTag := lc.Registry.Addr+"/base/trivy", tools.Version("TRIVY")
	_, err = registry.PushTrivy(trivyRepo+":"+trivyTag, tools.Trivy())
	must(t, err)

	// What the operator provides: volumes, the namespace's Secret.
	trivyDB := filepath.Join(lc.dir, "trivy-server")
	must(t, trivydb.Write(trivyDB, trivydb.Fixture))
	must(t, kubenode.HostVolume(ctx, lc.client, trivyDB, "slipway", "trivy-db", 65532))
	must(t, kubenode.HostVolume(ctx, lc.client, filepath.Join(lc.dir, "slipway-data"), "slipway", "slipway-data", 65532))
	_, err = lc.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "slipway"}}, metav1.CreateOptions{})
	must(t, err)
	const adminToken, hookSecret = "admin-t0ken", "hook-s3cret"
	_, err = lc.client.CoreV1().Secrets("slipway").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slipway-secrets"},
		StringData: map[string]string{"admin-token": adminToken, "trivy-token": "trivy-t0ken", "webhook-secret": hookSecret,
			"argocd-token": lc.ArgoCD.Token}}, metav1.CreateOptions{})
	must(t, err)

	// The platform repository: deploy/ as the base, the local overlay.
	platformRepo, err := lc.Git.CreateRepo("platform")
	must(t, err)
	platform, err := gitserver.Clone(platformRepo, filepath.Join(lc.dir, "platform"))
	must(t, err)
	files := map[string]string{}
	base, err := filepath.Glob("../deploy/*.yaml")
	must(t, err)
	for _, f := range base {
		b, err := os.ReadFile(f)
		must(t, err)
		files["slipway/base/"+filepath.Base(f)] = string(b)
	}
	repoName, digest, _ := strings.Cut(slipway, "@")
	fill := strings.NewReplacer("__SLIPWAY_REPO__", repoName, "__SLIPWAY_DIGEST__", digest, "__SLIPWAY_IMAGE__", slipway,
		"__TRIVY_REPO__", trivyRepo, "__TRIVY_TAG__", trivyTag, "__KANIKO_IMAGE__", kaniko, "__TRIVY_URL__", "http://trivy.slipway.svc:4954",
		"__REPO__", podRepo(e.appRepo), "__CONFIG__", podRepo(e.configRepo), "__REGISTRY__", lc.PodRegistry,
		"__BASE__", strings.Replace(lc.Base, lc.Registry.Addr, lc.PodRegistry, 1), "__ARGOCD__", argo, "__PROMETHEUS__", "http://"+prom)
	files["slipway/local/kustomization.yaml"] = fill.Replace(inClusterOverlay)
	files["slipway/local/slipway.yaml"] = fill.Replace(inClusterEngine)
	files["slipway/local/order-service.yaml"] = fill.Replace(inClusterPipeline)
	rev, err := platform.Commit("main", "slipway in the local cluster", files)
	must(t, err)
	must(t, platform.Push("main"))
	must(t, lc.ArgoCD.CreateApp(ctx, lc.dir, "slipway", platformRepo, "slipway/local", "slipway"))
	apps := argoApps(t, lc.Env, lc.dir)
	t.Logf("Argo CD synced Slipway to Healthy in %s", syncAndWait(t, apps, "slipway", rev).Round(time.Millisecond))

	svc, err := lc.client.CoreV1().Services("slipway").Get(ctx, "slipway", metav1.GetOptions{})
	must(t, err)
	engine := "http://" + svc.Spec.ClusterIP
	// Healthy in Argo CD; kube-proxy may take a moment more to route the
	// Service to its Pod.
	eventually.True(t, 30*time.Second, "the engine to answer through its Service", func() bool {
		resp, err := http.Get(engine + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// A push of order-service v2, delivered to the engine's Service.
	sha, err := e.app.Commit("main", "order-service v2", map[string]string{
		"svc/Dockerfile": demoapp.Dockerfile(strings.Replace(lc.Base, lc.Registry.Addr, lc.PodRegistry, 1)),
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
		t.Fatalf("run 1: %v %+v\n--- run log\n%s\n--- engine pod\n%s", err, run, logs, podLogs(t, lc, "slipway", "app.kubernetes.io/name=slipway"))
	}
	for _, want := range []string{"in pod slipway-builds/slipway-1-test-", "+ test -s svc/app", "in pod slipway-builds/slipway-1-build-",
		"asking the Trivy server", "CRITICAL 0, HIGH 0", "promoted"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the run's log lacks %q:\n%s", want, logs)
		}
	}
	stable, canary, weight, _ := e.configState(t)
	if !strings.Contains(stable, "/shop/order-service@sha256:") || weight != 0 {
		t.Errorf("after the release: stable %s, canary %s, canary weight %d", stable, canary, weight)
	}

	// The same Trivy server, asked by an engine on this machine: it finds
	// the vulnerable module in an image while the engine's Trivy cache
	// holds no database, and a wrong token is refused with a sentence.
	trivy, err := lc.client.CoreV1().Services("slipway").Get(ctx, "trivy", metav1.GetOptions{})
	must(t, err)
	trivyURL := fmt.Sprintf("http://%s:4954", trivy.Spec.ClusterIP)
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
	out, code := scan("trivy-t0ken")
	if want := "1 finding(s) at a gated severity (failOn: HIGH, CRITICAL): CVE-2021-38561 (HIGH) in golang.org/x/text v0.3.6, fixed in 0.3.7"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("scan against the cluster's Trivy server: exit %d, want 1 and %q\n%s", code, want, out)
	}
	if _, err := os.Stat(filepath.Join(cache, "db", "trivy.db")); err == nil {
		t.Error("the engine's Trivy cache holds a database")
	}
	out, code = scan("wrong")
	if code != 1 || !strings.Contains(out, "the Trivy server at "+trivyURL+" refused this engine's token (SLIPWAY_TRIVY_TOKEN)") || strings.Contains(out, "CVE-2021-38561") {
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

// podLogs is the log of the Pods that selector picks in ns, through the
// API (the kubelet serves it).
func podLogs(t testing.TB, lc *localCluster, ns, selector string) string {
	t.Helper()
	ctx := context.Background()
	pods, err := lc.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		raw, err := lc.client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		fmt.Fprintf(&b, "--- pod %s (%v)\n%s\n", p.Name, err, raw)
	}
	return b.String()
}
