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
// Pod on the local cluster's node, and runs a one-command run stage as a
// Pod (its duration is the Pod's overhead: scheduling, sandbox, checkout,
// container start). Reported: the stages' medians. Run with -benchtime 5x.
func BenchmarkPodStages(b *testing.B) {
	e := newPodEnv(b)
	sha, err := e.wt.Commit("main", "app", map[string]string{"svc/Dockerfile": "FROM scratch\nCOPY app /app\n", "svc/app": "hello\n"})
	must(b, err)
	must(b, e.wt.Push("main"))
	local := e.pipeline(b, "local", "local", e.Registry.Addr+"/shop/app", "", "")
	pod := e.pipeline(b, "pod", "kubernetes", e.PodRegistry+"/shop/app", "", "")
	noop := writeFile(b, e.dir, "noop.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: noop}
stages:
  - {name: clone, clone: {repo: %q}}
  - {name: noop, run: {image: %s, commands: [echo first line], executor: kubernetes}}
`, e.repo, e.Base))
	var locals, pods, runs []time.Duration
	for b.Loop() {
		for _, c := range []struct {
			file, stage, kind string
			into              *[]time.Duration
		}{{local, "build", "build", &locals}, {pod, "build", "build", &pods}, {noop, "noop", "run", &runs}} {
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
	b.Logf("build local %v, build pod %v, run pod %v", locals, pods, runs)
}
