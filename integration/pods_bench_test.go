package integration

import (
	"fmt"
	"regexp"
	"testing"
	"time"

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
	b.ReportMetric(benchreport.Median(locals).Seconds(), "build-local-s")
	b.ReportMetric(benchreport.Median(pods).Seconds(), "build-pod-s")
	b.ReportMetric(benchreport.Median(runs).Seconds(), "run-pod-s")
	b.ReportMetric(benchreport.Median(localRuns).Seconds(), "run-local-s")
	b.Logf("build local %v, build pod %v, run pod %v, run local %v", locals, pods, runs, localRuns)
}
