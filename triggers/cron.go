package triggers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

// Scheduler fires the `on.schedule` lines of the watched pipelines.
//
// Each schedule's last fire time is stored. On the first start a schedule
// only begins counting (it does not fire at once). After a restart, a
// schedule that should have fired while the engine was down fires once —
// not once per missed time — and one that was not due does not fire:
// a restart neither double-fires nor silently skips. Each fire's run is
// keyed by the schedule and the scheduled time, so a crash between
// starting the run and storing the fire cannot start it twice.
type Scheduler struct {
	entries []*scheduled
	store   store.Schedules
	runs    Submitter
	log     *slog.Logger
}

type scheduled struct {
	key  string // repository|source|pipeline|spec
	spec cron.Schedule
	src  Source
	repo *Repo
	name string
	line string
}

// NewScheduler reads the schedules of every pipeline of repos (a pipeline
// inside a repository is read at the tip of its default branch).
func NewScheduler(ctx context.Context, repos []*Repo, st store.Schedules, runs Submitter, log *slog.Logger) (*Scheduler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{store: st, runs: runs, log: log}
	for _, repo := range repos {
		for _, src := range repo.Sources {
			p, err := src.Load(ctx, "refs/heads/"+repo.Config.DefaultBranch(), "")
			if err != nil {
				log.Warn("reading pipeline for its schedules; it has none until the engine restarts", "source", src.String(), "err", err)
				continue
			}
			for _, line := range p.On.Schedule {
				spec, err := cron.ParseStandard(line)
				if err != nil {
					return nil, fmt.Errorf("pipeline %s: schedule %q: %w", p.Metadata.Name, line, err)
				}
				key := strings.Join([]string{repo.Config.Name, src.String(), p.Metadata.Name, line}, "|") // no other repository's schedule shares it
				s.entries = append(s.entries, &scheduled{key: key, spec: spec, src: src, repo: repo, name: p.Metadata.Name, line: line})
			}
		}
	}
	return s, nil
}

// Len is the number of schedules.
func (s *Scheduler) Len() int { return len(s.entries) }

// Run fires schedules as they come due until ctx is done.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		next, err := s.Tick(ctx, time.Now())
		if err != nil {
			s.log.Error("firing schedules", "err", err)
		}
		wait := time.Until(next)
		if next.IsZero() {
			wait = time.Hour // no schedules: nothing to do but wait for shutdown
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Tick fires every schedule due at now and returns when the next one is due.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) (time.Time, error) {
	var (
		earliest time.Time
		firstErr error
	)
	for _, e := range s.entries {
		last, err := s.store.LastFire(ctx, e.key)
		if err != nil {
			return time.Time{}, err
		}
		switch {
		case last.IsZero():
			err = s.store.SetLastFire(ctx, e.key, now) // first start: begin counting from now
			last = now
		case !e.spec.Next(last).After(now):
			at := latestDue(e.spec, last, now)
			err = s.fire(ctx, e, at)
			last = at
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if next := e.spec.Next(last); earliest.IsZero() || next.Before(earliest) {
			earliest = next
		}
	}
	return earliest, firstErr
}

// latestDue is the last scheduled time at or before now after last (so a
// long outage fires once, for the most recent missed time).
func latestDue(spec cron.Schedule, last, now time.Time) time.Time {
	t := spec.Next(last)
	for range 100_000 {
		n := spec.Next(t)
		if n.After(now) {
			return t
		}
		t = n
	}
	return now.Truncate(time.Second)
}

func (s *Scheduler) fire(ctx context.Context, e *scheduled, at time.Time) error {
	ref := "refs/heads/" + e.repo.Config.DefaultBranch()
	p, err := e.src.Load(ctx, ref, "")
	if err != nil {
		return fmt.Errorf("schedule %q of %s: %w", e.line, e.name, err)
	}
	run, created, err := s.runs.Submit(ctx, e.repo.Request(p,
		store.Trigger{Event: pipeline.EventSchedule, Repo: e.repo.Config.URL, Ref: ref, Actor: "schedule " + e.line},
		"schedule/"+e.key+"/"+at.UTC().Format(time.RFC3339)))
	if err != nil {
		return fmt.Errorf("schedule %q of %s: %w", e.line, e.name, err)
	}
	s.log.Info("schedule fired", "pipeline", e.name, "schedule", e.line, "at", at, "run", run.ID, "new", created)
	return s.store.SetLastFire(ctx, e.key, at)
}
