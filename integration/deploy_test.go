package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/localenv"
)

// releaseEnv is the whole local environment with the demo service's
// source repository and its GitOps config repository, the order-service
// Application created in Argo CD and synced at its first revision.
type releaseEnv struct {
	*localCluster
	appRepo, configRepo string
	app                 *gitserver.WorkTree
	config              *gitserver.WorkTree
	v1                  string
}

func newReleaseEnv(t testing.TB) *releaseEnv {
	t.Helper()
	needBuildTools(t)
	lc := startLocalCluster(t, localenv.Options{Mesh: true, ArgoCD: true})
	e := &releaseEnv{localCluster: lc}
	var err error
	e.appRepo, err = lc.Git.CreateRepo("order-service")
	must(t, err)
	e.app, err = gitserver.Clone(e.appRepo, filepath.Join(lc.dir, "app"))
	must(t, err)
	e.configRepo, err = lc.Git.CreateRepo("gitops")
	must(t, err)
	e.config, err = gitserver.Clone(e.configRepo, filepath.Join(lc.dir, "config"))
	must(t, err)
	e.v1 = pushDemoImage(t, lc.reg, "shop/order-service:v1", "v1", 0, 0)
	rev, err := e.config.Commit("main", "order-service v1; canary slot runs v1 too", demoapp.Manifests(e.v1, e.v1, 90, 10))
	must(t, err)
	must(t, e.config.Push("main"))
	apps := orderServiceApp(t, lc.Env, lc.dir, e.configRepo)
	syncAndWait(t, apps, "order-service", rev)
	return e
}

// pushApp commits the demo service with a behaviour and returns the commit.
func (e *releaseEnv) pushApp(t *testing.T, version string) string {
	t.Helper()
	sha, err := e.app.Commit("main", "order-service "+version, map[string]string{"Dockerfile": demoapp.Dockerfile(e.Base),
		"app": string(appBinary(t, false)), "behaviour.json": demoapp.Behaviour(version, 0, 0)})
	must(t, err)
	must(t, e.app.Push("main"))
	return sha
}

func (e *releaseEnv) pipeline(t *testing.T, argoServer, app string, timeout string) string {
	t.Helper()
	return writeFile(t, e.dir, "release.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: order-service}
secrets:
  ARGOCD_TOKEN: {env: TEST_ARGOCD_TOKEN}
stages:
  - {name: clone, clone: {repo: %q}}
  - {name: build, build: {image: %s/shop/order-service, insecure: true}}
  - {name: scan, scan: {insecure: true}}
  - name: deploy
    deploy:
      gitops:
        repo: %q
        path: apps/order-service
        image: {manifest: deployment-v2.yaml, container: order-service}
      argocd: {app: %s, server: %q, plainText: true, token: ARGOCD_TOKEN, timeout: %s}
`, e.appRepo, e.Registry.Addr, e.configRepo, app, argoServer, timeout))
}

func (e *releaseEnv) run(t *testing.T, pipeline, sha, token string) (string, int) {
	t.Helper()
	cmd := exec.Command(slipwayBin, "run", pipeline, "--data", filepath.Join(e.dir, "data"), "--sha", sha)
	cmd.Env = append(append(os.Environ(), e.TrivyEnv()...), "TEST_ARGOCD_TOKEN="+token)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// A push becomes a running canary: clone, Kaniko build, Trivy scan, the
// digest committed to the config repo, the real Argo CD syncing exactly
// that revision, the canary Pod running the new image, traffic through the
// mesh reaching it and Prometheus counting its requests.
func TestDeployCommitsTheDigestAndArgoCDRunsIt(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	sha := e.pushApp(t, "v2-from-git")
	out, code := e.run(t, e.pipeline(t, e.ArgoCD.Server, "order-service", "2m"), sha, e.ArgoCD.Token)
	if code != 0 {
		t.Fatalf("release failed: exit %d\n%s", code, out)
	}
	for _, want := range []string{"committed", "apps/order-service now runs order-service@sha256:", "Argo CD reports order-service Synced and Healthy"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, e.ArgoCD.Token) {
		t.Error("the Argo CD token was printed")
	}
	// The canary workload runs the new image by digest.
	st := openStore(t, filepath.Join(e.dir, "data"))
	defer st.Close()
	stages, _ := st.ListStages(context.Background(), 1)
	digest, commit := stages[1].Outputs["digest"], stages[3].Outputs["commit"]
	dep, err := e.client.AppsV1().Deployments("shop").Get(context.Background(), "order-service-v2", metav1.GetOptions{})
	must(t, err)
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, "@"+digest) || stages[3].Outputs["revision"] != commit {
		t.Errorf("canary image %s, want @%s; revision %s, commit %s", img, digest, stages[3].Outputs["revision"], commit)
	}
	waitFor(t, "the new version to answer through the mesh", func() bool {
		body, err := httpGetHost("http://"+e.Proxy.Addr+"/", "order-service.shop")
		return err == nil && strings.Contains(body, "order-service v2-from-git ok")
	})
	waitFor(t, "Prometheus to count the canary's requests", func() bool {
		n, ok := promQuery(t, e.Prometheus.URL, `sum(istio_requests_total{destination_workload="order-service-v2",destination_workload_namespace="shop"})`)
		return ok && n > 0
	})
	// The config repo's message names the release.
	log, err := exec.Command("git", "-C", e.config.Dir, "pull", "-q").CombinedOutput()
	must(t, err)
	msg, _ := exec.Command("git", "-C", e.config.Dir, "log", "-1", "--format=%B").Output()
	for _, want := range []string{"Pipeline: order-service", "Run: 1", "Source: refs/heads/main " + sha, "@" + digest} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("commit message lacks %q:\n%s%s", want, msg, log)
		}
	}
	// The same digest again: nothing to change, no empty commit, still synced.
	out, code = e.run(t, e.deployOnly(t, stages[1].Outputs["ref"], e.ArgoCD.Server, "order-service", "1m"), sha, e.ArgoCD.Token)
	if code != 0 || !strings.Contains(out, "no new commit") || !strings.Contains(out, "Synced and Healthy") {
		t.Errorf("deploying the same digest again: exit %d\n%s", code, out)
	}
}

// deployOnly is a pipeline with just the deploy stage, of image ref.
func (e *releaseEnv) deployOnly(t *testing.T, ref, argoServer, app, timeout string) string {
	t.Helper()
	return writeFile(t, e.dir, "deploy.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: order-service}
secrets:
  ARGOCD_TOKEN: {env: TEST_ARGOCD_TOKEN}
stages:
  - name: deploy
    deploy:
      image: %s
      gitops: {repo: %q, path: apps/order-service, image: {manifest: deployment-v2.yaml, container: order-service}}
      argocd: {app: %s, server: %q, plainText: true, token: ARGOCD_TOKEN, timeout: %s}
`, ref, e.configRepo, app, argoServer, timeout))
}

// Each failure is a clear stage error, and the config repository holds at
// most the deploy's own commit.
func TestDeployFailuresAreExplained(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	sha := e.pushApp(t, "v3")
	head := func() string {
		out, _ := exec.Command("git", "ls-remote", e.configRepo, "refs/heads/main").Output()
		return strings.Fields(string(out))[0]
	}
	before := head()
	ref := e.Registry.Addr + "/shop/order-service@sha256:" + strings.Repeat("b", 64)
	tests := []struct {
		name, server, app, token, timeout, want string
	}{
		{"Argo CD unreachable", "127.0.0.1:9", "order-service", e.ArgoCD.Token, "10s", "Argo CD is unreachable"},
		{"wrong token", e.ArgoCD.Server, "order-service", "not-a-token", "10s", "Argo CD refused the token"},
		{"unknown application", e.ArgoCD.Server, "no-such-app", e.ArgoCD.Token, "10s", "no-such-app"},
	}
	for _, tt := range tests {
		out, code := e.run(t, e.deployOnly(t, ref, tt.server, tt.app, tt.timeout), sha, tt.token)
		if code != 1 || !strings.Contains(out, tt.want) || strings.Contains(out, e.ArgoCD.Token) {
			t.Errorf("%s: exit %d, want %q:\n%s", tt.name, code, tt.want, out)
		}
	}
	// Nothing was committed for those: Argo CD was checked first.
	if after := head(); after != before {
		t.Errorf("a failed check still committed to the config repository (%s → %s)", before, after)
	}
	// An image that cannot be pulled: synced, never healthy, explained.
	p := e.deployOnly(t, e.Registry.Addr+"/shop/missing@sha256:"+strings.Repeat("a", 64), e.ArgoCD.Server, "order-service", "20s")
	began := time.Now()
	out, code := e.run(t, p, sha, e.ArgoCD.Token)
	if code != 1 || !strings.Contains(out, "did not become Synced and Healthy") || !strings.Contains(out, "the image cannot be pulled") {
		t.Errorf("image missing: exit %d after %s:\n%s", code, time.Since(began).Round(time.Second), out)
	}
	if after := head(); after == before {
		t.Error("the missing image's deploy commit is not in the config repository")
	}
}

// The real node produces a process that exits, a readiness probe that
// fails and a Pod no node fits (the real scheduler says so); the deploy
// stage explains each.
func TestDeployExplainsUnhealthyPods(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	crash := pushDemoImageWith(t, e.reg, "shop/order-service:crash", "this is not JSON")
	unready := pushDemoImageWith(t, e.reg, "shop/order-service:unready", demoapp.UnhealthyBehaviour("unready"))
	for _, tt := range []struct {
		name, image string
		edit        func()
		want        string
	}{
		{"process exits", crash, nil, "keeps exiting (CrashLoopBackOff, last exit code 2"},
		{"probe fails", unready, nil, "running but not ready — its readiness probe fails"},
		{"no node fits", e.v1, func() {
			files := demoapp.Manifests(e.v1, e.v1, 90, 10)
			files["apps/order-service/deployment-v2.yaml"] = strings.Replace(files["apps/order-service/deployment-v2.yaml"],
				"    spec:\n      containers:", "    spec:\n      nodeSelector: {disktype: ssd}\n      containers:", 1)
			_, err := e.config.Commit("main", "canary wants ssd", files)
			must(t, err)
			must(t, e.config.Push("main"))
		}, "cannot be scheduled (0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
	} {
		if tt.edit != nil {
			exec.Command("git", "-C", e.config.Dir, "pull", "-q", "--rebase").Run()
			tt.edit()
		}
		// 25 s: under CI's load the kubelet may take 15 s to start the
		// first container, and there is nothing to explain before that.
		out, code := e.run(t, e.deployOnly(t, tt.image, e.ArgoCD.Server, "order-service", "25s"), "", e.ArgoCD.Token)
		if code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: exit %d, want %q:\n%s", tt.name, code, tt.want, out)
		}
	}
}

// presyncHook is an Argo CD PreSync hook Job that keeps a sync operation
// running for a while (busybox's sleep, in a Pod).
func presyncHook(base string, seconds int) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: presync-wait
  annotations:
    argocd.argoproj.io/hook: PreSync
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - {name: wait, image: %s, command: ["sleep", "%d"]}
`, base, seconds)
}

// An operation already in progress is waited for, then the deploy syncs;
// a deploy cancelled mid-sync (Ctrl-C) terminates the operation it started.
func TestDeployWaitsForAnOperationAndTerminatesItsOwn(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	exec.Command("git", "-C", e.config.Dir, "pull", "-q", "--rebase").Run()
	files := demoapp.Manifests(e.v1, e.v1, 90, 10)
	files["apps/order-service/presync.yaml"] = presyncHook(e.Base, 5)
	rev, err := e.config.Commit("main", "a PreSync hook that takes 5s", files)
	must(t, err)
	must(t, e.config.Push("main"))
	client, err := e.ArgoCD.Client(e.dir)
	must(t, err)
	closer, apps, err := client.NewApplicationClient()
	must(t, err)
	defer closer.Close()
	name := "order-service"
	_, err = apps.Sync(context.Background(), &application.ApplicationSyncRequest{Name: &name, Revision: &rev})
	must(t, err)

	v2 := pushDemoImage(t, e.reg, "shop/order-service:v2-wait", "v2-wait", 0, 0)
	out, code := e.run(t, e.deployOnly(t, v2, e.ArgoCD.Server, name, "90s"), "", e.ArgoCD.Token)
	if code != 0 || !strings.Contains(out, "another Argo CD operation on order-service is in progress; waiting for it") ||
		!strings.Contains(out, "Synced and Healthy") {
		t.Fatalf("deploy during another operation: exit %d\n%s", code, out)
	}

	// Now a hook that outlasts our patience: Ctrl-C the deploy mid-sync.
	exec.Command("git", "-C", e.config.Dir, "pull", "-q", "--rebase").Run()
	files["apps/order-service/presync.yaml"] = presyncHook(e.Base, 120)
	_, err = e.config.Commit("main", "a PreSync hook that takes 2 minutes", files)
	must(t, err)
	must(t, e.config.Push("main"))
	v3 := pushDemoImage(t, e.reg, "shop/order-service:v3-cancel", "v3-cancel", 0, 0)
	cmd := exec.Command(slipwayBin, "run", e.deployOnly(t, v3, e.ArgoCD.Server, name, "5m"), "--data", filepath.Join(e.dir, "data"))
	cmd.Env = append(os.Environ(), "TEST_ARGOCD_TOKEN="+e.ArgoCD.Token)
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	must(t, cmd.Start())
	waitFor(t, "the deploy to start its sync", func() bool { return strings.Contains(buf.String(), "Argo CD is syncing") })
	must(t, cmd.Process.Signal(os.Interrupt))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the cancelled deploy did not end:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "terminated the Argo CD operation on order-service") || !strings.Contains(buf.String(), "CANCELLED") {
		t.Errorf("cancelled deploy output:\n%s", buf.String())
	}
	// Terminating (requested, the controller stopping the hook) or already
	// Failed/Error with "terminated": either way no longer running ours.
	var last string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		a, err := apps.Get(context.Background(), &application.ApplicationQuery{Name: &name})
		if err == nil && a.Status.OperationState != nil {
			op := a.Status.OperationState
			last = fmt.Sprintf("%s: %s", op.Phase, op.Message)
			if op.Phase == "Terminating" || ((op.Phase == "Failed" || op.Phase == "Error") && strings.Contains(strings.ToLower(op.Message), "terminat")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Argo CD never reported the operation terminated; last: %s", last)
		}
	}
}
