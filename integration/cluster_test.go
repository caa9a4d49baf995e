package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/slipwayci/slipway/integration/argocd"
	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/internal/eventually"
)

func needClusterTools(t testing.TB) {
	t.Helper()
	need(t, os.Geteuid() == 0, "root (the node runs containers)")
	for _, m := range cluster.Missing() {
		need(t, false, m)
	}
	_, err := exec.LookPath("docker-registry")
	need(t, err == nil, "docker-registry (make tools)")
}

// pushDemoImage pushes the demo service as a one-layer image: busybox,
// the binary and its behaviour file.
func pushDemoImage(t testing.TB, reg *registry.Registry, ref, version string, errorRate float64, latencyMs int) string {
	t.Helper()
	return pushDemoImageWith(t, reg, ref, demoapp.Behaviour(version, errorRate, latencyMs))
}

// pushDemoImageWith pushes the demo service with a behaviour file's content.
func pushDemoImageWith(t testing.TB, reg *registry.Registry, ref, behaviour string) string {
	t.Helper()
	image, err := demoapp.Push(context.Background(), reg.Addr, ref, behaviour)
	must(t, err)
	return image
}

// localCluster is the local environment with its cluster parts.
type localCluster struct {
	*localenv.Env
	*cluster.Cluster
	client *kubernetes.Clientset
	reg    *registry.Registry
	dir    string
	up     time.Duration // how long the environment took to start
}

// startLocalCluster starts the local environment with the cluster, its
// Pods on a real node (kubenode), and what opts adds, for one test, and
// tears it down after.
func startLocalCluster(t testing.TB, opts ...localenv.Options) *localCluster {
	t.Helper()
	o := localenv.Options{Cluster: true}
	for _, x := range opts {
		o = x
	}
	return startEnv(t, o)
}

// logTimings logs how long each part of the environment took to start.
func (lc *localCluster) logTimings(t *testing.T) {
	for _, tm := range lc.Timings {
		t.Logf("%-15s %s", tm.Part, tm.Took.Round(time.Millisecond))
	}
	t.Logf("environment up in %s (parts side by side)", lc.up.Round(time.Millisecond))
}

// startEnv starts the local environment o describes for one test.
func startEnv(t testing.TB, o localenv.Options) *localCluster {
	t.Helper()
	mayStartCluster(t)
	needClusterTools(t)
	if o.ArgoCD {
		for _, m := range argocd.Missing() {
			need(t, false, m)
		}
	}
	for _, m := range kubenode.Missing() {
		need(t, false, m)
	}
	if o.Mesh {
		_, err := exec.LookPath("prometheus")
		need(t, err == nil, "prometheus (make tools)")
	}
	dir := t.TempDir()
	began := time.Now()
	env, err := localenv.Start(context.Background(), dir, o)
	must(t, err)
	up := time.Since(began)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("component logs:\n%s", env.Logs(15))
		}
		began := time.Now()
		env.Close()
		t.Logf("environment down in %s", time.Since(began).Round(time.Millisecond))
	})
	return &localCluster{Env: env, Cluster: env.Cluster, client: env.Kube, reg: env.Registry, dir: dir, up: up}
}

func demoDeployment(name, version, image string) *appsv1.Deployment {
	labels := map[string]string{"app": "order-service", "version": version}
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "order-service", Image: image,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz",
						Port: intstr.FromString("http")}}, PeriodSeconds: 1},
				}}},
			},
		},
	}
}

func (lc *localCluster) waitAvailable(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "deployment "+name+" to be available", func() bool {
		d, err := lc.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 1 && d.Status.UpdatedReplicas == 1
	})
	pods, err := lc.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=order-service"})
	must(t, err)
	for i := range pods.Items {
		if pods.Items[i].Status.PodIP != "" && pods.Items[i].DeletionTimestamp == nil && strings.HasPrefix(pods.Items[i].Name, name) {
			return &pods.Items[i]
		}
	}
	t.Fatalf("no running pod of %s", name)
	return nil
}

// The control plane on a real node — the kubelet and kube-proxy on a
// containerd of the node's own, scheduled by kube-scheduler: a Deployment
// of an image from the local registry becomes Available through the
// kubelet's readiness probe, its Pod answers at its own address and
// through its Service's cluster IP, its log is read through the API
// server, a process killed in it is restarted, and Stop leaves no shim,
// bridge, iptables chain or changed kernel setting behind.
func TestRealNodeRunsADeployment(t *testing.T) {
	onNode(t)
	before, err := os.ReadFile("/proc/sys/kernel/panic_on_oops")
	must(t, err)
	lc := startLocalCluster(t)
	lc.logTimings(t)
	ctx := context.Background()
	image := pushDemoImage(t, lc.reg, "shop/order-service:v1", "v1", 0, 0)
	created := time.Now()
	_, err = lc.client.AppsV1().Deployments("default").Create(ctx, demoDeployment("order-service-v1", "v1", image), metav1.CreateOptions{})
	must(t, err)
	pod := lc.waitAvailable(t, "default", "order-service-v1")
	t.Logf("Deployment available %s after it was created", time.Since(created).Round(time.Millisecond))
	for _, p := range lc.Node.Procs() {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
		for line := range strings.Lines(string(status)) {
			if strings.HasPrefix(line, "VmRSS:") {
				t.Logf("%-15s RSS %s", p.Name, strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")))
			}
		}
	}
	get := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	if got := get(fmt.Sprintf("http://%s:8080/", pod.Status.PodIP)); !strings.Contains(got, "order-service v1 ok") {
		t.Errorf("pod %s answered %q", pod.Status.PodIP, got)
	}
	if pod.Spec.NodeName != kubenode.Name || !strings.HasPrefix(pod.Status.PodIP, "10.244.0.") {
		t.Errorf("pod on node %q at %s, want %s on %s", pod.Spec.NodeName, pod.Status.PodIP, kubenode.Name, kubenode.PodCIDR)
	}
	svc, err := lc.client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "order-service"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "order-service"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "the Service's cluster IP to answer", func() bool {
		return strings.Contains(get("http://"+svc.Spec.ClusterIP+"/"), "order-service v1 ok")
	})
	logs, err := lc.client.CoreV1().Pods("default").GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || len(logs) == 0 {
		t.Errorf("pod log through the API server: %v %q", err, logs)
	}
	must(t, exec.Command("pkill", "-KILL", "-f", "^/app").Run())
	waitFor(t, "the killed container to be restarted", func() bool {
		p, err := lc.client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount == 1 &&
			p.Status.ContainerStatuses[0].Ready
	})

	lc.Env.Close()
	if alive := procs.Alive("/run/slw-node-"); len(alive) > 0 {
		t.Errorf("processes of the node left after Close: %v", alive)
	}
	if out, _ := exec.Command("ip", "link", "show", kubenode.Bridge).CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("bridge %s left after Close: %s", kubenode.Bridge, out)
	}
	if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), "KUBE-") || strings.Contains(string(out), kubenode.Bridge) {
		t.Errorf("iptables rules of the node left after Close:\n%s", out)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "slw-away") {
		t.Errorf("the node's away namespace left after Close: %s", out)
	}
	if out, _ := exec.Command("ipset", "list", "-n").Output(); strings.Contains(string(out), "KUBE-") {
		t.Errorf("the NetworkPolicy agent's ipsets left after Close:\n%s", out)
	}
	if after, _ := os.ReadFile("/proc/sys/kernel/panic_on_oops"); string(after) != string(before) {
		t.Errorf("kernel.panic_on_oops is %q after Close, was %q", after, before)
	}
}

// A missing image is reported as ImagePullBackOff, a process that exits
// as CrashLoopBackOff with its exit code and restarts: what Argo CD and
// the deploy stage will read to explain an unhealthy release.
func TestFailingPodsAreReported(t *testing.T) {
	onNode(t)
	lc := startLocalCluster(t)
	ctx := context.Background()
	missing := lc.reg.Addr + "/shop/nothing:v9"
	_, err := lc.client.AppsV1().Deployments("default").Create(ctx, demoDeployment("no-image", "v9", missing), metav1.CreateOptions{})
	must(t, err)
	crash := pushDemoImage(t, lc.reg, "shop/crash:v1", "v1", 0, 0)
	d := demoDeployment("crasher", "crash", crash)
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "BEHAVIOUR_FILE", Value: "/bin/busybox"}} // not JSON: exit 2
	_, err = lc.client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	must(t, err)
	waitState := func(prefix string, ok func(corev1.ContainerStatus) bool) {
		waitFor(t, prefix+" pod state", func() bool {
			pods, _ := lc.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			for _, p := range pods.Items {
				if strings.HasPrefix(p.Name, prefix) && len(p.Status.ContainerStatuses) == 1 && ok(p.Status.ContainerStatuses[0]) {
					return true
				}
			}
			return false
		})
	}
	waitState("no-image", func(s corev1.ContainerStatus) bool {
		return s.State.Waiting != nil && s.State.Waiting.Reason == "ImagePullBackOff" && strings.Contains(s.State.Waiting.Message, "nothing")
	})
	waitState("crasher", func(s corev1.ContainerStatus) bool {
		return s.RestartCount >= 1 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" &&
			s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ExitCode == 2
	})
}

// The whole launcher comes up — registry, git, control plane, node,
// Argo CD, mesh proxy, Prometheus — and Close leaves no process behind.
func TestLauncherTeardownLeavesNothing(t *testing.T) {
	onNode(t)
	needClusterTools(t)
	for _, m := range append(argocd.Missing(), kubenode.Missing()...) {
		need(t, false, m)
	}
	dir := t.TempDir()
	env, err := localenv.Start(context.Background(), dir, localenv.Options{Mesh: true, ArgoCD: true})
	must(t, err)
	for _, tm := range env.Timings {
		t.Logf("%-15s %s", tm.Part, tm.Took.Round(time.Millisecond))
	}
	started := env.Procs()
	var names []string
	for _, p := range started {
		names = append(names, p.Name)
	}
	if len(started) != 14 {
		t.Errorf("expected registry, etcd, kube-apiserver, kube-controller-manager, containerd, kubelet, kube-router, kube-proxy, kube-scheduler, redis, 3 Argo CD roles and Prometheus, started %v", names)
	}
	env.Close()
	for _, p := range started {
		if p.Running() {
			t.Errorf("%s (pid %d) still runs after Close", p.Name, p.Pid())
		}
	}
	if alive := procs.Alive(dir); len(alive) > 0 {
		t.Errorf("processes left after Close: %v", alive)
	}
}

// clusterMissing lists what the local cluster needs and lacks.
func clusterMissing() []string {
	m := cluster.Missing()
	if os.Geteuid() != 0 {
		m = append(m, "root")
	}
	return m
}

// httpGetHost GETs url with a Host header and returns the body.
func httpGetHost(url, host string) (string, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A Pod reaches the API server as Slipway in a cluster does: client-go's
// in-cluster config — the kubernetes Service (kube-proxy to the node's
// relay), the Pod's service-account token, and the CA it is given, which
// verifies the API server's certificate (integration/cmd/incluster) —
// and finds Services by name through the node's cluster DNS.
func TestPodsReachTheAPIServer(t *testing.T) {
	onNode(t)
	lc := startLocalCluster(t)
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "incluster")
	build := exec.Command("go", "build", "-o", bin, "./cmd/incluster")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the in-cluster client: %v\n%s", err, out)
	}
	image := lc.reg.Addr + "/test/incluster:1"
	data, err := os.ReadFile(bin)
	must(t, err)
	_, err = registry.PushImageConfig(image, []registry.File{{Path: "incluster", Mode: 0o755, Data: data}},
		v1.Config{Entrypoint: []string{"/incluster"}})
	must(t, err)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-client"},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "client", Image: image}}},
	}
	_, err = lc.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)
	var phase corev1.PodPhase
	eventually.True(t, 60*time.Second, "the client pod to finish", func() bool {
		p, err := lc.client.CoreV1().Pods("default").Get(ctx, "api-client", metav1.GetOptions{})
		if err == nil {
			phase = p.Status.Phase
		}
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed
	})
	out, err := lc.client.CoreV1().Pods("default").GetLogs("api-client", &corev1.PodLogOptions{}).DoRaw(ctx)
	must(t, err)
	if phase != corev1.PodSucceeded || !strings.Contains(string(out), "reached https://10.96.0.1:443: v1.36.3") {
		t.Fatalf("the pod did not reach the API server (%s):\n%s", phase, out)
	}
	for _, want := range []string{"kubernetes.default.svc is [10.96.0.1]", "no-such-service.default.svc: lookup no-such-service.default.svc", "no such host"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the pod's DNS answers lack %q:\n%s", want, out)
		}
	}
}
