package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/stages/tools"
)

// podEnv is the local cluster set up for executor: kubernetes: a
// namespace for the stages' Pods, the helper and Kaniko images in the
// registry, and a repository Pods can fetch (through the node's address).
type podEnv struct {
	*localCluster
	ns      string
	engine  []string // the engine's environment for Pods
	repo    string   // the repository, as the engine and the Pods reach it
	wt      *gitserver.WorkTree
	watched *podRecorder
}

func newPodEnv(t testing.TB) *podEnv {
	t.Helper()
	needBuildTools(t)
	lc := startLocalCluster(t)
	ctx := context.Background()
	e := &podEnv{localCluster: lc, ns: "slipway-builds"}
	_, err := lc.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{})
	must(t, err)
	helper, kaniko := lc.Registry.Addr+"/slipway/slipway:test", lc.Registry.Addr+"/slipway/kaniko:"+tools.Version("KANIKO")
	_, err = registry.PushSlipway(helper, staticSlipway(t))
	must(t, err)
	_, err = registry.PushKaniko(kaniko, tools.Kaniko())
	must(t, err)
	e.engine = []string{"SLIPWAY_KUBECONFIG=" + lc.Cluster.Kubeconfig, "SLIPWAY_POD_NAMESPACE=" + e.ns,
		"SLIPWAY_HELPER_IMAGE=" + helper, "SLIPWAY_KANIKO_IMAGE=" + kaniko}
	url, err := lc.Git.CreateRepo("shop")
	must(t, err)
	e.repo = strings.Replace(url, lc.Git.URL, lc.PodGit, 1)
	e.wt, err = gitserver.Clone(url, filepath.Join(lc.dir, "wt"))
	must(t, err)
	e.watched = recordPods(t, e)
	return e
}

var static struct {
	once sync.Once
	path string
	err  error
}

// staticSlipway is the product binary built without cgo, as the image
// ships it (the test binary links the race detector's C library).
func staticSlipway(t testing.TB) string {
	t.Helper()
	static.once.Do(func() {
		static.path = filepath.Join(binDir, "slipway-static")
		cmd := exec.Command("go", "build", "-trimpath", "-o", static.path, "github.com/slipwayci/slipway/cmd/slipway")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			static.err = fmt.Errorf("building the static slipway: %v\n%s", err, out)
		}
	})
	must(t, static.err)
	return static.path
}

// pipeline clones the repository with a token and builds svc/ with
// executor, pushing to image; stage and build are more settings of the
// stage and of its build ("key: value, ").
func (e *podEnv) pipeline(t testing.TB, name, executor, image, stage, build string) string {
	t.Helper()
	return writeFile(t, e.dir, name+".yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: %s}
secrets:
  GIT_TOKEN: {env: TEST_GIT_TOKEN}
  REG_TOKEN: {env: TEST_REG_TOKEN}
stages:
  - {name: clone, clone: {repo: %q, auth: {token: GIT_TOKEN}}}
  - {name: build, %sbuild: {%scontext: svc, image: %s, insecure: true, executor: %s, auth: {token: REG_TOKEN}}}
`, name, e.repo, stage, build, image, executor))
}

const (
	podGitToken = "git-t0ken-never-in-a-pod-spec"
	podRegToken = "reg-t0ken-never-in-a-pod-spec"
)

// env is the engine's environment: the Pods' settings, the two secrets,
// and a TMPDIR for local builds' sandboxes.
func (e *podEnv) env(t testing.TB, more ...string) []string {
	t.Helper()
	return append(append(slices.Clone(e.engine), "TMPDIR="+sandboxTmp(t), "TEST_GIT_TOKEN="+podGitToken, "TEST_REG_TOKEN="+podRegToken), more...)
}

// run runs `slipway run` to its end with env(more).
func (e *podEnv) run(t testing.TB, pipeline, sha string, more ...string) (string, int) {
	t.Helper()
	p := startSlipwayEnv(t, e.env(t, more...), "run", pipeline, "--data", filepath.Join(e.dir, "data"), "--sha", sha)
	code := p.waitExit(t)
	return p.out.String(), code
}

var pushedRE = regexp.MustCompile(`pushed \S+@(sha256:[0-9a-f]{64})`)

// left is what the stages left in the namespace: Pods and Secrets.
func (e *podEnv) left(ctx context.Context) (string, error) {
	pods, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	secrets, err := e.client.CoreV1().Secrets(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, "pod/"+p.Name)
	}
	for _, s := range secrets.Items {
		names = append(names, "secret/"+s.Name)
	}
	return strings.Join(names, " "), nil
}

// nothingLeft waits (bounded) until the namespace holds no Pod or Secret
// of a stage: each is deleted when its stage ends.
func (e *podEnv) nothingLeft(t testing.TB, what string) {
	t.Helper()
	eventually.True(t, 30*time.Second, what+": the pods and secrets to be gone", func() bool {
		left, err := e.left(context.Background())
		return err == nil && left == ""
	})
}

// podsHeldNo fails when any version of any Pod seen held one of secrets
// (in its spec or status) or mounted a service-account token.
func (e *podEnv) podsHeldNo(t testing.TB, secrets ...string) {
	t.Helper()
	e.watched.mu.Lock()
	defer e.watched.mu.Unlock()
	if len(e.watched.pods) == 0 {
		t.Fatalf("saw no pod (events: %v)", e.watched.events)
	}
	for _, p := range e.watched.pods {
		raw, _ := json.Marshal(p)
		for _, secret := range secrets {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("pod %s holds a secret in its spec or status:\n%s", p.Name, raw)
			}
		}
		if *p.Spec.AutomountServiceAccountToken {
			t.Errorf("pod %s mounts a service-account token", p.Name)
		}
	}
}

// podRecorder keeps every version of every Pod and Secret of the namespace.
type podRecorder struct {
	mu      sync.Mutex
	pods    []corev1.Pod
	secrets []corev1.Secret
	events  []string
}

func recordPods(t testing.TB, e *podEnv) *podRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &podRecorder{}
	var wg sync.WaitGroup
	for _, w := range []func() (watch.Interface, error){
		func() (watch.Interface, error) { return e.client.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{}) },
		func() (watch.Interface, error) {
			return e.client.CoreV1().Secrets(e.ns).Watch(ctx, metav1.ListOptions{})
		},
	} {
		wi, err := w()
		must(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range wi.ResultChan() {
				r.add(ev)
			}
		}()
		t.Cleanup(wi.Stop)
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

func (r *podRecorder) add(ev watch.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s %+v", ev.Type, ev.Object))
	switch o := ev.Object.(type) {
	case *corev1.Pod:
		r.pods = append(r.pods, *o.DeepCopy())
	case *corev1.Secret:
		r.secrets = append(r.secrets, *o.DeepCopy())
	}
}

// A build with executor: kubernetes runs the Kaniko executor as a Pod on
// the real node: the Pod fetches the exact commit itself (the engine's
// credentials reach it only through a Secret made for the attempt, never
// through its spec), Kaniko's log streams into the run's, and the image
// has the digest a local build of the same commit has. Nothing is left
// in the namespace after.
func TestBuildRunsAsAPod(t *testing.T) {
	onNode(t)
	e := newPodEnv(t)
	sha, err := e.wt.Commit("main", "app", map[string]string{"svc/Dockerfile": "FROM scratch\nCOPY app /app\n", "svc/app": "hello from a pod\n"})
	must(t, err)
	must(t, e.wt.Push("main"))

	local, code := e.run(t, e.pipeline(t, "local", "local", e.Registry.Addr+"/shop/app", "", ""), sha)
	if code != 0 {
		t.Fatalf("local build: exit %d\n%s", code, local)
	}
	began := time.Now()
	inPod, code := e.run(t, e.pipeline(t, "pod", "kubernetes", e.PodRegistry+"/shop/app", "", ""), sha)
	if code != 0 {
		t.Fatalf("pod build: exit %d\n%s", code, inPod)
	}
	t.Logf("pod build took %s", time.Since(began).Round(time.Millisecond))
	for _, want := range []string{"in pod slipway-builds/slipway-2-build-", "fetching refs/heads/main at " + sha, "checked out " + sha, "Pushed "} {
		if !strings.Contains(inPod, want) {
			t.Errorf("the pod build's log lacks %q:\n%s", want, inPod)
		}
	}
	l, p := pushedRE.FindStringSubmatch(local), pushedRE.FindStringSubmatch(inPod)
	if l == nil || p == nil || l[1] != p[1] {
		t.Errorf("digests differ: local %v, pod %v\n--- local\n%s\n--- pod\n%s", l, p, local, inPod)
	}

	e.nothingLeft(t, "pod build")
	e.podsHeldNo(t, podGitToken, podRegToken)
	e.watched.mu.Lock()
	defer e.watched.mu.Unlock()
	owned := false
	for _, s := range e.watched.secrets {
		owned = owned || len(s.OwnerReferences) == 1 && s.OwnerReferences[0].Kind == "Pod" && s.OwnerReferences[0].Name == s.Name
	}
	if !owned {
		t.Error("the attempt's secret was never owned by its pod")
	}
}

// commitSlowBuild pushes a Dockerfile whose RUN takes a few seconds, on the
// busybox base image as Pods reach the registry; it returns the commit.
func (e *podEnv) commitSlowBuild(t *testing.T, seconds int) string {
	t.Helper()
	base := e.PodBase
	sha, err := e.wt.Commit("main", "slow", map[string]string{"svc/Dockerfile": fmt.Sprintf("FROM %s\nRUN sleep %d && echo slow step done\n", base, seconds)})
	must(t, err)
	must(t, e.wt.Push("main"))
	return sha
}

// buildRunning waits (bounded) until a build Pod's Kaniko container runs.
func (e *podEnv) buildRunning(t *testing.T, p *engine) *corev1.Pod {
	t.Helper()
	var running *corev1.Pod
	eventually.True(t, 90*time.Second, "the build pod's kaniko container to run", func() bool {
		select {
		case <-p.waited:
			t.Fatalf("slipway exited early:\n%s", p.out.String())
		default:
		}
		pods, err := e.client.CoreV1().Pods(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "slipway.dev/role=build"})
		if err != nil {
			return false
		}
		for i, pod := range pods.Items {
			for _, st := range pod.Status.ContainerStatuses {
				if st.Name == "build" && st.State.Running != nil {
					running = &pods.Items[i]
					return true
				}
			}
		}
		return false
	})
	return running
}

// An engine killed with SIGKILL in the middle of a build leaves its Pod
// running; the next engine resumes the run and attaches to that Pod
// instead of starting the build again: one Pod, one build, the image
// pushed.
func TestEngineKilledMidBuildReattachesToItsPod(t *testing.T) {
	onNode(t)
	e := newPodEnv(t)
	sha := e.commitSlowBuild(t, 8)
	data := filepath.Join(e.dir, "data")
	pipeline := e.pipeline(t, "slow", "kubernetes", e.PodRegistry+"/shop/slow", "", "")
	first := startSlipwayEnv(t, e.env(t), "run", pipeline, "--data", data, "--sha", sha)
	pod := e.buildRunning(t, first)
	first.killHard(t)

	second := startSlipwayEnv(t, e.env(t), "recover", "--data", data)
	if code := second.waitExit(t); code != 0 {
		t.Fatalf("resume exited %d:\n%s", code, second.out.String())
	}
	if out := second.out.String(); !strings.Contains(out, "run 1 of slow: SUCCEEDED") {
		t.Errorf("resume output:\n%s", out)
	}
	st := openStore(t, data)
	defer st.Close()
	lines, err := st.ReadLogs(context.Background(), 1, 0, 1000)
	must(t, err)
	var text []string
	for _, l := range lines {
		text = append(text, l.Text)
	}
	log := strings.Join(text, "\n")
	for _, want := range []string{"attaching to pod slipway-builds/" + pod.Name, "slow step done", "pushed " + e.PodRegistry + "/shop/slow@sha256:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the run's log lacks %q:\n%s", want, log)
		}
	}
	e.nothingLeft(t, "resumed build")
	e.watched.mu.Lock()
	defer e.watched.mu.Unlock()
	uids := map[string]bool{}
	for _, p := range e.watched.pods {
		uids[string(p.UID)] = true
	}
	if len(uids) != 1 {
		t.Errorf("%d build pods were created, want 1 (the engine re-attached)", len(uids))
	}
}

// A build Pod that cannot do its work fails the stage with a sentence
// naming the cause, and leaves nothing behind: Kaniko failing (its exit
// code), an executor image that cannot be pulled, and a Pod that cannot be
// scheduled until the stage's timeout deletes it.
func TestPodBuildFailuresAreExplained(t *testing.T) {
	onNode(t)
	e := newPodEnv(t)
	ctx := context.Background()
	sha, err := e.wt.Commit("main", "broken", map[string]string{"svc/Dockerfile": "FROM scratch\nNOSUCHINSTRUCTION here\n"})
	must(t, err)
	must(t, e.wt.Push("main"))

	out, code := e.run(t, e.pipeline(t, "broken", "kubernetes", e.PodRegistry+"/shop/broken", "", ""), sha)
	if code != 1 || !regexp.MustCompile(`the Kaniko executor failed in pod slipway-\d+-build-\w+ \(exit code 1\)`).MatchString(out) ||
		!strings.Contains(out, "NOSUCHINSTRUCTION") {
		t.Errorf("failing build: exit %d:\n%s", code, out)
	}
	e.nothingLeft(t, "failing build")

	out, code = e.run(t, e.pipeline(t, "nopull", "kubernetes", e.PodRegistry+"/shop/broken", "", ""), sha,
		"SLIPWAY_KANIKO_IMAGE="+e.Registry.Addr+"/slipway/no-such-kaniko:1")
	if code != 1 || !strings.Contains(out, "container build: the image cannot be pulled") {
		t.Errorf("image that cannot be pulled: exit %d:\n%s", code, out)
	}
	e.nothingLeft(t, "image that cannot be pulled")

	// One read of 300 MB into one buffer: the kernel fills it without
	// running the process's code, so the container reaches its limit at
	// once and is killed. A pipe (head | sort) grew page by page while
	// its own code was evicted and read back: it thrashed at the limit
	// for 25 s on an idle machine and for over 2 minutes under CI's load.
	base := e.PodBase
	hungry, err := e.wt.Commit("main", "hungry", map[string]string{"svc/Dockerfile": "FROM " + base + "\nRUN dd if=/dev/zero of=/dev/null bs=300M count=1\n"})
	must(t, err)
	must(t, e.wt.Push("main"))
	out, code = e.run(t, e.pipeline(t, "oom", "kubernetes", e.PodRegistry+"/shop/oom", "", "pod: {resources: {limits: {memory: 96Mi}}}, "), hungry)
	if code != 1 || !strings.Contains(out, "container build was killed for running out of memory (OOMKilled") {
		t.Errorf("a build over its memory limit: exit %d:\n%s", code, out)
	}
	e.nothingLeft(t, "out of memory")

	// Nothing fits: the node is tainted; the stage's timeout ends it.
	node, err := e.client.CoreV1().Nodes().Get(ctx, e.Node.Name, metav1.GetOptions{})
	must(t, err)
	node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: "slipway.dev/test", Value: "hold", Effect: corev1.TaintEffectNoSchedule})
	_, err = e.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
	must(t, err)
	out, code = e.run(t, e.pipeline(t, "pending", "kubernetes", e.PodRegistry+"/shop/pending", "timeout: 5s, ", ""), sha)
	if code != 1 || !strings.Contains(out, "stage timed out after 5s") || !strings.Contains(out, "cannot be scheduled (0/1 nodes are available: 1 node(s) had untolerated taint") {
		t.Errorf("unschedulable build: exit %d:\n%s", code, out)
	}
	e.nothingLeft(t, "unschedulable build")
}

// A run stage runs commands in any image, on the run's checkout, as a Pod
// and in this machine's sandbox alike: the pipeline's and the stage's
// variables and the secrets it names are its environment (the secret
// masked in the log, never in the Pod spec); each command is printed
// before it runs, and the first that fails fails the stage with its exit
// code.
func TestRunStageRunsCommandsOnBothExecutors(t *testing.T) {
	onNode(t)
	e := newPodEnv(t)
	sha, err := e.wt.Commit("main", "tests", map[string]string{"svc/app": "hello\n", "test.sh": "grep -q hello svc/app && echo tests passed\n"})
	must(t, err)
	must(t, e.wt.Push("main"))
	const apiKey = "api-k3y-never-in-a-pod-spec"
	pipeline := func(name, executor string, commands ...string) string {
		quoted, _ := json.Marshal(commands)
		return writeFile(t, e.dir, name+".yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: %s}
env: {GREETING: hello}
secrets:
  GIT_TOKEN: {env: TEST_GIT_TOKEN}
  API_KEY: {env: TEST_API_KEY}
stages:
  - {name: clone, clone: {repo: %q, auth: {token: GIT_TOKEN}}}
  - {name: test, run: {image: %s, commands: %s, env: {WHO: tests}, secrets: [API_KEY], executor: %s}}
`, name, e.repo, e.Base, quoted, executor))
	}
	// The same stage on both executors: a Pod, and this machine's sandbox
	// in the image's filesystem.
	for executor, failed := range map[string]string{
		"kubernetes": `a command failed in pod slipway-\d+-test-\w+ \(exit code 7\)`,
		"local":      `a command failed in the sandbox \(exit code 7\)`,
	} {
		out, code := e.run(t, pipeline("pass-"+executor, executor, "sh test.sh", `echo "$GREETING from $WHO, key $API_KEY, in $(pwd)"`), sha, "TEST_API_KEY="+apiKey)
		if code != 0 {
			t.Fatalf("%s run stage: exit %d\n%s", executor, code, out)
		}
		for _, want := range []string{"+ sh test.sh", "tests passed", "+ echo \"$GREETING from $WHO", "hello from tests, key ***, in /workspace/src"} {
			if !strings.Contains(out, want) {
				t.Errorf("the %s run stage's log lacks %q:\n%s", executor, want, out)
			}
		}
		out, code = e.run(t, pipeline("fail-"+executor, executor, "echo before", "exit 7", "echo after"), sha, "TEST_API_KEY="+apiKey)
		if code != 1 || !regexp.MustCompile(failed).MatchString(out) || !strings.Contains(out, "+ exit 7") || strings.Contains(out, "+ echo after") {
			t.Errorf("%s failing command: exit %d\n%s", executor, code, out)
		}
	}
	// A stage Pod runs under the runtime's default seccomp profile (mode 2:
	// filtered) with exactly the capabilities pods.Capabilities lists in
	// its effective set: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4,
	// KILL 5, SETGID 6, SETUID 7, SETFCAP 31 — no NET_RAW (13), no
	// SYS_CHROOT (18), no MKNOD (27).
	out, code := e.run(t, pipeline("confined", "kubernetes", "grep -E '^(Seccomp|CapEff):' /proc/self/status"), sha, "TEST_API_KEY="+apiKey)
	seccomp := regexp.MustCompile(`Seccomp:\s+(\d)`).FindStringSubmatch(out)
	capEff := regexp.MustCompile(`CapEff:\s+([0-9a-f]+)`).FindStringSubmatch(out)
	if code != 0 || seccomp == nil || seccomp[1] != "2" || capEff == nil {
		t.Errorf("the stage Pod's confinement: exit %d\n%s", code, out)
	} else if caps, err := strconv.ParseUint(capEff[1], 16, 64); err != nil || caps != 0x800000fb {
		t.Errorf("the stage Pod holds capabilities %s, want exactly 800000fb", capEff[1])
	}
	e.nothingLeft(t, "run stages")
	e.podsHeldNo(t, apiKey, podGitToken)

	// The local sandbox has no network (not even the git server the Pods
	// reach) and no view of the machine; its root is removed after.
	tmp := sandboxTmp(t)
	git, err := url.Parse(e.repo)
	must(t, err)
	out, code = e.run(t, pipeline("isolated", "local",
		"nc -w 2 "+git.Hostname()+" "+git.Port()+" </dev/null && echo REACHED || echo no network",
		"ls /proc | grep -c '^[0-9]' | sed 's/^/processes: /'",
		"touch /probe && cat /etc/os-release 2>/dev/null || echo no host files"), sha, "TMPDIR="+tmp, "TEST_API_KEY="+apiKey)
	if code != 0 || !strings.Contains(out, "│ no network") || regexp.MustCompile(`(?m)│ REACHED$`).MatchString(out) || !strings.Contains(out, "│ no host files") {
		t.Errorf("the local sandbox reached out: exit %d\n%s", code, out)
	}
	if m := regexp.MustCompile(`processes: (\d+)`).FindStringSubmatch(out); m == nil || len(m[1]) > 1 {
		t.Errorf("the sandbox sees the machine's processes:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "slipway-sandboxes", "run-root-*")); len(left) > 0 {
		t.Errorf("run sandboxes left behind: %v", left)
	}
}

// A run cancelled in the middle of a build (Ctrl-C on `slipway run`)
// deletes the build's Pod and Secret at once: nothing is left after 30 s,
// and the registry never gets the image.
func TestCancelledBuildDeletesItsPod(t *testing.T) {
	onNode(t)
	e := newPodEnv(t)
	sha := e.commitSlowBuild(t, 60)
	p := startSlipwayEnv(t, e.env(t), "run", e.pipeline(t, "cancelled", "kubernetes", e.PodRegistry+"/shop/cancelled", "", ""),
		"--data", filepath.Join(e.dir, "data"), "--sha", sha)
	e.buildRunning(t, p)
	must(t, p.cmd.Process.Signal(os.Interrupt))
	if code := p.waitExit(t); code != 1 || !strings.Contains(p.out.String(), "cancelled") {
		t.Errorf("slipway run after Ctrl-C: exit %d\n%s", code, p.out.String())
	}
	e.nothingLeft(t, "cancelled build")
	if strings.Contains(p.out.String(), "slipway: pushed") {
		t.Errorf("the build finished despite the cancel:\n%s", p.out.String())
	}
}

// On an engine with a cluster, the code pushed to a repository runs as a
// Pod though its pipeline names no executor; a pushed pipeline asking for
// the engine's own sandbox (executor: local), or an image from outside the
// repository's prefixes, is refused where it is written, and never runs.
func TestPushedCodeRunsAsPodsByDefault(t *testing.T) {
	onNode(t)
	e := newPodEnv(t)
	dir := t.TempDir()
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "git-token", podGitToken+"\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(engineHeader+`  - name: shop
    url: %q
    forge: github
    webhookSecret: {file: hook-secret}
    token: {file: git-token}
    pipelines: [{path: .slipway.yaml}]
    secrets: [{name: GIT_TOKEN, from: {file: git-token}}]
    images: [%s/base]
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, e.repo, e.Registry.Addr))
	eng := startServeEnv(t, e.env(t), config)
	pushed := func(run string) string {
		return fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: shop}
on: {push: {branches: [main]}}
secrets: [GIT_TOKEN]
stages:
  - {name: clone, clone: {auth: {token: GIT_TOKEN}}}
  - {name: test, run: {%s, commands: ["echo running as $(id -u) in $(hostname)"]}}
`, run)
	}
	var before string
	runOf := func(file string) (status, reason, logs string) {
		t.Helper()
		sha, err := e.wt.Commit("main", "pipeline", map[string]string{".slipway.yaml": file})
		must(t, err)
		must(t, e.wt.Push("main"))
		if code, err := deliverPush(eng.url, "s3cret", "delivery-"+sha, e.repo, cmp.Or(before, strings.Repeat("0", 40)), sha); err != nil || code >= 300 {
			t.Fatalf("delivering the push: %d, %v", code, err)
		}
		before = sha
		var runs struct{ Runs []struct{ ID int64 } }
		var run struct {
			Status, Reason string
			Trigger        struct{ SHA string }
		}
		waitFor(t, "the push's run to end", func() bool {
			eng.api(t, "GET", "/api/v1/runs?limit=1", "ops-token-value", &runs)
			if len(runs.Runs) == 0 {
				return false
			}
			eng.api(t, "GET", fmt.Sprintf("/api/v1/runs/%d", runs.Runs[0].ID), "ops-token-value", &run)
			return run.Trigger.SHA == sha && run.Status != "queued" && run.Status != "running"
		})
		logs, _ = cli(t, "logs", fmt.Sprint(runs.Runs[0].ID), "--server", eng.url, "--token", "ops-token-value")
		return run.Status, run.Reason, logs
	}
	status, reason, logs := runOf(pushed("image: " + e.Base))
	if status != "succeeded" || !regexp.MustCompile(`running \S+ in pod slipway-builds/slipway-\d+-test-`).MatchString(logs) ||
		!regexp.MustCompile(`running as 0 in slipway-\d+-test-`).MatchString(logs) {
		t.Errorf("a pushed run stage naming no executor: %s %q\n%s", status, reason, logs)
	}
	for _, tt := range []struct{ run, want string }{
		{"image: " + e.Base + ", executor: local", `\.slipway\.yaml@[0-9a-f]{7}:8:\d+: stages\[1\]\.run\.executor: local would run code pushed to repository shop on the engine's own machine`},
		{"image: " + e.Registry.Addr + "/slipway/slipway:test", `\.slipway\.yaml@[0-9a-f]{7}:8:\d+: stages\[1\]\.run\.image: \S+ is not under an image prefix of repository shop`},
	} {
		status, reason, logs := runOf(pushed(tt.run))
		if status != "failed" || !regexp.MustCompile(tt.want).MatchString(reason) || strings.Contains(logs, "running as") {
			t.Errorf("%s: run %s %q, want refused with %s\n%s", tt.run, status, reason, tt.want, logs)
		}
	}
	e.nothingLeft(t, "pushed runs")
}
