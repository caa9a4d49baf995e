package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/internal/benchreport"
)

// stageTook reads a stage's duration from `slipway run`'s summary table.
func stageTook(b *testing.B, out, stage, kind string) time.Duration {
	b.Helper()
	m := regexp.MustCompile(`(?m)^` + stage + `\s+` + kind + `\s+succeeded\s+\d+\s+(\S+)`).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no succeeded %s stage in:\n%s", stage, out)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkPodStages builds the same commit in the local sandbox and as a
// Pod on the local cluster's node, and runs a one-command run stage on
// both executors (its duration is the executor's overhead: for a Pod
// scheduling, sandbox, checkout, container start; locally the image
// pulled and unpacked, the checkout copied, the sandbox made and
// removed). Reported: the stages' medians. Run with -benchtime 5x.
func BenchmarkPodStages(b *testing.B) {
	e := newPodEnv(b)
	sha, err := e.wt.Commit("main", "app", map[string]string{"svc/Dockerfile": "FROM scratch\nCOPY app /app\n", "svc/app": "hello\n"})
	must(b, err)
	must(b, e.wt.Push("main"))
	local := e.pipeline(b, "local", "local", e.Registry.Addr+"/shop/app", "", "")
	pod := e.pipeline(b, "pod", "kubernetes", e.PodRegistry+"/shop/app", "", "")
	noop := func(executor string) string {
		return writeFile(b, e.dir, "noop-"+executor+".yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: noop}
stages:
  - {name: clone, clone: {repo: %q}}
  - {name: noop, run: {image: %s, commands: [echo first line], executor: %s}}
`, e.repo, e.Base, executor))
	}
	var locals, pods, runs, localRuns []time.Duration
	for b.Loop() {
		for _, c := range []struct {
			file, stage, kind string
			into              *[]time.Duration
		}{{local, "build", "build", &locals}, {pod, "build", "build", &pods}, {noop("kubernetes"), "noop", "run", &runs},
			{noop("local"), "noop", "run", &localRuns}} {
			out, code := e.run(b, c.file, sha)
			if code != 0 {
				b.Fatalf("%s: exit %d\n%s", c.file, code, out)
			}
			*c.into = append(*c.into, stageTook(b, out, c.stage, c.kind))
		}
	}
	// The same run stage under the build namespace's NetworkPolicies,
	// enforced by the node's agent, its Pod waiting for them to hold.
	fence(b, e.localCluster, e.ns, strings.TrimPrefix(e.PodGit, "http://"), e.PodRegistry)
	var fenced []time.Duration
	for range len(runs) {
		out, code := e.run(b, noop("kubernetes"), sha, "SLIPWAY_POD_FENCE=api-server")
		if code != 0 {
			b.Fatalf("a run stage under the policies: exit %d\n%s", code, out)
		}
		fenced = append(fenced, stageTook(b, out, "noop", "run"))
	}
	b.ReportMetric(benchreport.Median(fenced).Seconds(), "run-pod-fenced-s")
	b.ReportMetric(benchreport.Median(locals).Seconds(), "build-local-s")
	b.ReportMetric(benchreport.Median(pods).Seconds(), "build-pod-s")
	b.ReportMetric(benchreport.Median(runs).Seconds(), "run-pod-s")
	b.ReportMetric(benchreport.Median(localRuns).Seconds(), "run-local-s")
	b.Logf("build local %v, build pod %v, run pod %v (under the policies %v), run local %v", locals, pods, runs, fenced, localRuns)
}

// fence applies deploy/builds.yaml's NetworkPolicies to namespace ns, with
// the operator's policy letting its Pods reach addrs (host:port).
func fence(tb testing.TB, lc *localCluster, ns string, addrs ...string) {
	tb.Helper()
	raw, err := os.ReadFile("../deploy/builds.yaml")
	must(tb, err)
	for doc := range strings.SplitSeq(string(raw), "\n---\n") {
		var np networkingv1.NetworkPolicy
		if err := yaml.Unmarshal([]byte(doc), &np); err != nil || np.Kind != "NetworkPolicy" {
			continue
		}
		np.Namespace = ns
		_, err := lc.client.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), &np, metav1.CreateOptions{})
		must(tb, err)
	}
	reach, err := kubenode.ReachPolicy(ns, addrs)
	must(tb, err)
	_, err = lc.client.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), reach, metav1.CreateOptions{})
	must(tb, err)
}
