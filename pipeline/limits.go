package pipeline

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Limits bound what a pipeline read from a repository may ask of an engine
// other repositories share: anyone who can push writes it. The engine
// config may set them per repository (repositories[].limits); a zero field
// takes its default. Pipelines the operator wrote are not limited.
type Limits struct {
	MaxStages     int      `yaml:"maxStages"`     // stages in the pipeline; default 30
	MaxRunning    int      `yaml:"maxRunning"`    // the repository's runs running at once; default 2
	MaxTimeout    Duration `yaml:"maxTimeout"`    // a stage's timeout; default 2h
	MaxRetries    int      `yaml:"maxRetries"`    // a stage's retries (attempts after the first); default 3
	MinSchedule   Duration `yaml:"minSchedule"`   // between two runs its schedules start; default 5m
	MaxMetrics    int      `yaml:"maxMetrics"`    // metrics of one analysis; default 10
	MinCheckEvery Duration `yaml:"minCheckEvery"` // how often an analysis may query Prometheus; default 1s
	MaxCPU        string   `yaml:"maxCPU"`        // a stage Pod's cpu request or limit; default 4
	MaxMemory     string   `yaml:"maxMemory"`     // a stage Pod's memory request or limit; default 8Gi
	MaxDisk       string   `yaml:"maxDisk"`       // a stage Pod's ephemeral-storage request or limit; default 20Gi
	MaxRunLog     string   `yaml:"maxRunLog"`     // what the logs of a run's stages keep together; default 128Mi
}

// DefaultLimits are the limits of a repository whose engine config sets none.
var DefaultLimits = Limits{
	MaxStages: 30, MaxRunning: 2, MaxTimeout: Duration(2 * time.Hour), MaxRetries: 3, MinSchedule: Duration(5 * time.Minute),
	MaxMetrics: 10, MinCheckEvery: Duration(time.Second), MaxCPU: "4", MaxMemory: "8Gi", MaxDisk: "20Gi", MaxRunLog: "128Mi",
}

// Problems says what is wrong with limits an engine config sets: a
// negative bound, or a size that is not a quantity.
func (l Limits) Problems() []string {
	var why []string
	if l.MaxStages < 0 || l.MaxMetrics < 0 || l.MaxRetries < 0 || l.MaxRunning < 0 || l.MaxTimeout < 0 || l.MinSchedule < 0 || l.MinCheckEvery < 0 {
		why = append(why, "limits may not be negative (0 or leaving one out takes its default)")
	}
	if _, ok := parseQuantity(l.MaxCPU); l.MaxCPU != "" && !ok {
		why = append(why, fmt.Sprintf("maxCPU %q is not a cpu quantity (500m, 2)", l.MaxCPU))
	}
	if _, ok := parseQuantity(l.MaxMemory); l.MaxMemory != "" && !ok {
		why = append(why, fmt.Sprintf("maxMemory %q is not a memory quantity (512Mi, 8Gi)", l.MaxMemory))
	}
	if _, ok := parseQuantity(l.MaxDisk); l.MaxDisk != "" && !ok {
		why = append(why, fmt.Sprintf("maxDisk %q is not a size (10Gi, 100G)", l.MaxDisk))
	}
	if n, ok := parseQuantity(l.MaxRunLog); l.MaxRunLog != "" && (!ok || n < 1) {
		why = append(why, fmt.Sprintf("maxRunLog %q is not a size (64Mi, 1Gi)", l.MaxRunLog))
	}
	return why
}

// OrDefaults is l with each zero field set to its default.
func (l Limits) OrDefaults() Limits {
	d := DefaultLimits
	if l.MaxStages > 0 {
		d.MaxStages = l.MaxStages
	}
	if l.MaxTimeout > 0 {
		d.MaxTimeout = l.MaxTimeout
	}
	if l.MinSchedule > 0 {
		d.MinSchedule = l.MinSchedule
	}
	if l.MaxRetries > 0 {
		d.MaxRetries = l.MaxRetries
	}
	if l.MaxRunning > 0 {
		d.MaxRunning = l.MaxRunning
	}
	if l.MaxMetrics > 0 {
		d.MaxMetrics = l.MaxMetrics
	}
	if l.MinCheckEvery > 0 {
		d.MinCheckEvery = l.MinCheckEvery
	}
	d.MaxCPU, d.MaxMemory, d.MaxDisk = cmp.Or(l.MaxCPU, d.MaxCPU), cmp.Or(l.MaxMemory, d.MaxMemory), cmp.Or(l.MaxDisk, d.MaxDisk)
	d.MaxRunLog = cmp.Or(l.MaxRunLog, d.MaxRunLog)
	return d
}

// RunLogBytes is what the logs of one run's stages may keep together, in
// bytes (maxRunLog, or its default).
func (l Limits) RunLogBytes() int64 {
	n, _ := parseQuantity(l.OrDefaults().MaxRunLog)
	return int64(n)
}

// Check reports, through fail (a path in the file and a sentence), each
// way p exceeds l. Validation reports them with their positions; the
// runner asks again before each stage, with the limits as they are then.
func (l Limits) Check(p *Pipeline, fail func(path, format string, args ...any)) {
	l = l.OrDefaults()
	if len(p.Stages) > l.MaxStages {
		fail("stages", "%d stages; a pipeline read from a repository may have at most %d (repositories[].limits.maxStages)", len(p.Stages), l.MaxStages)
	}
	for i, line := range p.On.Schedule {
		if gap, ok := shortestGap(line); ok && gap < time.Duration(l.MinSchedule) {
			fail(fmt.Sprintf("on.schedule[%d]", i), "%q starts runs %s apart; a pipeline read from a repository may start them at most every %s (repositories[].limits.minSchedule)", line, gap, l.MinSchedule)
		}
	}
	for i, st := range p.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		if time.Duration(st.Timeout) > time.Duration(l.MaxTimeout) {
			fail(at+".timeout", "%s is longer than the %s a stage of a pipeline read from a repository may take (repositories[].limits.maxTimeout)", st.Timeout, l.MaxTimeout)
		}
		if st.Retries > l.MaxRetries {
			fail(at+".retries", "%d retries; a stage of a pipeline read from a repository may be tried again at most %d times (repositories[].limits.maxRetries)", st.Retries, l.MaxRetries)
		}
		if pod, path, ok := PodOf(&st, at); ok {
			l.checkPodSize(pod, path, fail)
		}
		if st.Canary == nil {
			continue
		}
		a := st.Canary.Analysis
		if len(a.Metrics) > l.MaxMetrics {
			fail(at+".canary.analysis.metrics", "%d metrics; an analysis of a pipeline read from a repository may have at most %d (repositories[].limits.maxMetrics)", len(a.Metrics), l.MaxMetrics)
		}
		if a.CheckEvery != 0 && time.Duration(a.CheckEvery) < time.Duration(l.MinCheckEvery) {
			fail(at+".canary.analysis.checkEvery", "%s is more often than a pipeline read from a repository may query Prometheus (every %s at most, repositories[].limits.minCheckEvery)", a.CheckEvery, l.MinCheckEvery)
		}
	}
}

// shortestGap is the shortest time between two runs a cron line starts,
// over the 1,000 starts after a fixed instant (a year of an hourly line);
// false for a line that does not parse (validation says so).
func shortestGap(line string) (time.Duration, bool) {
	s, err := cron.ParseStandard(line)
	if err != nil {
		return 0, false
	}
	prev := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	shortest := time.Duration(-1)
	for range 1000 {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		if gap := next.Sub(prev); shortest < 0 || gap < shortest {
			shortest = gap
		}
		prev = next
	}
	return shortest, shortest >= 0
}

// PodOf is the pod settings of a stage that runs as a Pod (build, run),
// with where they are in the file; ok is false for other kinds.
func PodOf(st *Stage, at string) (pod PodSettings, path string, ok bool) {
	switch {
	case st.Build != nil:
		return st.Build.Pod, at + ".build.pod", true
	case st.Run != nil:
		return st.Run.Pod, at + ".run.pod", true
	}
	return PodSettings{}, "", false
}

// DefaultExecutor sets executor on the build and run stages that name
// none ("" leaves them to their kind's default, local).
func (p *Pipeline) DefaultExecutor(executor string) {
	for i := range p.Stages {
		switch st := &p.Stages[i]; {
		case st.Build != nil && st.Build.Executor == "":
			st.Build.Executor = executor
		case st.Run != nil && st.Run.Executor == "":
			st.Run.Executor = executor
		}
	}
}

// checkPodSize reports, through fail, a request or limit of cpu, memory
// or ephemeral-storage above the repository's bound.
func (l Limits) checkPodSize(pod PodSettings, at string, fail func(path, format string, args ...any)) {
	bounds := map[string]struct{ max, key string }{
		"cpu": {l.MaxCPU, "maxCPU"}, "memory": {l.MaxMemory, "maxMemory"}, "ephemeral-storage": {l.MaxDisk, "maxDisk"},
	}
	for kind, asked := range map[string]map[string]string{"requests": pod.Resources.Requests, "limits": pod.Resources.Limits} {
		for name, q := range asked {
			b, known := bounds[name]
			if !known {
				continue // validation refuses other resources
			}
			path := at + ".resources." + kind + "." + name
			v, ok := parseQuantity(q)
			maxV, _ := parseQuantity(b.max)
			// A quantity that does not parse is validation's to report:
			// parseQuantity reads every one it accepts.
			if ok && v > maxV {
				fail(path, "%s is more than the %s a Pod of a pipeline read from a repository may ask (repositories[].limits.%s)", q, b.max, b.key)
			}
		}
	}
}

// quantityScale is each suffix's multiplier.
var quantityScale = map[string]float64{"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}

// parseQuantity reads a quantity in its base unit (cores, bytes): "500m"
// is 0.5, "2Gi" 2147483648 — every quantity validation accepts.
func parseQuantity(q string) (float64, bool) {
	m := Quantity.FindStringSubmatch(q)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(q, m[3]), 64)
	return v * quantityScale[m[3]], err == nil
}
