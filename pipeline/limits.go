package pipeline

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Limits bound what a pipeline read from a repository may ask of an engine
// other repositories share: anyone who can push writes it. The engine
// config may set them per repository (repositories[].limits); a zero field
// takes its default. Pipelines the operator wrote are not limited.
type Limits struct {
	MaxStages     int      `yaml:"maxStages"`     // stages in the pipeline; default 30
	MaxTimeout    Duration `yaml:"maxTimeout"`    // a stage's timeout; default 2h
	MinSchedule   Duration `yaml:"minSchedule"`   // between two runs its schedules start; default 5m
	MaxMetrics    int      `yaml:"maxMetrics"`    // metrics of one analysis; default 10
	MinCheckEvery Duration `yaml:"minCheckEvery"` // how often an analysis may query Prometheus; default 1s
}

// DefaultLimits are the limits of a repository whose engine config sets none.
var DefaultLimits = Limits{
	MaxStages: 30, MaxTimeout: Duration(2 * time.Hour), MinSchedule: Duration(5 * time.Minute),
	MaxMetrics: 10, MinCheckEvery: Duration(time.Second),
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
	if l.MaxMetrics > 0 {
		d.MaxMetrics = l.MaxMetrics
	}
	if l.MinCheckEvery > 0 {
		d.MinCheckEvery = l.MinCheckEvery
	}
	return d
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
