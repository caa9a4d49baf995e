package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/trivydb"
	"github.com/slipwayci/slipway/integration/trivyserver"
	"github.com/slipwayci/slipway/stages/tools"
)

// kustomizeBase renders deploy/ with the pinned kustomize.
func kustomizeBase(t testing.TB) []byte {
	t.Helper()
	kustomize := filepath.Join(tools.Dir(), "kustomize-"+tools.Version("KUSTOMIZE"), "kustomize")
	need(t, fileExists(kustomize), kustomize+" (make tools)")
	out, err := exec.Command(kustomize, "build", "../deploy").Output()
	if err != nil {
		t.Fatalf("kustomize build ../deploy: %v", err)
	}
	return out
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startTrivyServer runs deploy/'s Trivy server on the node with the test
// database and token, and returns its URL.
func startTrivyServer(t testing.TB, lc *localCluster, token string) string {
	t.Helper()
	ctx := context.Background()
	image := lc.Registry.Addr + "/base/trivy:" + tools.Version("TRIVY")
	_, err := registry.PushTrivy(image, tools.Trivy())
	must(t, err)
	db := filepath.Join(lc.dir, "trivy-server")
	must(t, trivydb.Write(db, trivydb.Fixture))
	_, err = lc.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "slipway"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = lc.client.CoreV1().Secrets("slipway").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slipway-secrets"},
		StringData: map[string]string{"trivy-token": token}}, metav1.CreateOptions{})
	must(t, err)
	srv, err := trivyserver.Deploy(ctx, lc.client, kustomizeBase(t), image, db)
	if err != nil {
		t.Fatalf("%v\n%s", err, lc.Logs(20))
	}
	return srv.URL
}

// A scan asks the Trivy server deploy/ runs in the cluster: the engine
// holds no vulnerability database (its Trivy cache is empty before and
// after), reads the image a build Pod pushed, and the server's database
// finds the vulnerable module; a wrong token is refused with a sentence.
func TestScanAsksTheTrivyServerInTheCluster(t *testing.T) {
	e := newPodEnv(t)
	const token = "trivy-t0ken"
	url := startTrivyServer(t, e.localCluster, token)
	files := map[string]string{"svc/Dockerfile": demoapp.Dockerfile(strings.Replace(e.Base, e.Registry.Addr, e.PodRegistry, 1)),
		"svc/app": string(appBinary(t, true)), "svc/behaviour.json": demoapp.Behaviour("v2", 0, 0)}
	sha, err := e.wt.Commit("main", "app with x/text v0.3.6", files)
	must(t, err)
	must(t, e.wt.Push("main"))
	p := writeFile(t, e.dir, "scan.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: scan}
secrets:
  GIT_TOKEN: {env: TEST_GIT_TOKEN}
  REG_TOKEN: {env: TEST_REG_TOKEN}
stages:
  - {name: clone, clone: {repo: %q, auth: {token: GIT_TOKEN}}}
  - {name: build, build: {context: svc, image: %s/shop/app, insecure: true, executor: kubernetes, auth: {token: REG_TOKEN}}}
  - {name: scan, scan: {failOn: [HIGH, CRITICAL], insecure: true}}
`, e.repo, e.PodRegistry))
	cache := t.TempDir()
	out, code := e.run(t, p, sha, "SLIPWAY_TRIVY_SERVER="+url, "SLIPWAY_TRIVY_TOKEN="+token, "SLIPWAY_TRIVY_CACHE="+cache)
	if want := "1 finding(s) at a gated severity (failOn: HIGH, CRITICAL): CVE-2021-38561 (HIGH) in golang.org/x/text v0.3.6, fixed in 0.3.7"; code != 1 || !strings.Contains(out, want) {
		t.Fatalf("scan against the server: exit %d, want 1 and %q\n%s", code, want, out)
	}
	if fileExists(filepath.Join(cache, "db", "trivy.db")) {
		t.Error("the engine's Trivy cache holds a database")
	}

	out, code = e.run(t, p, sha, "SLIPWAY_TRIVY_SERVER="+url, "SLIPWAY_TRIVY_TOKEN=wrong", "SLIPWAY_TRIVY_CACHE="+cache)
	if code != 1 || !strings.Contains(out, "the Trivy server at "+url+" refused this engine's token (SLIPWAY_TRIVY_TOKEN)") || strings.Contains(out, "CVE-2021-38561") {
		t.Fatalf("scan with a wrong token: exit %d\n%s", code, out)
	}
}
