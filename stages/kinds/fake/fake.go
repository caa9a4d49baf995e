// Package fake is the scripted stage kind: it writes log lines, waits,
// fails on chosen attempts and sets outputs, and does nothing else. Tests
// use it to drive the runner through every path. Only test and benchmark
// builds of slipway register it (-tags slipway_fake), never the shipped one.
//
// It is also a referee: a Stage driven against the lifecycle of
// stages.Stage (Validate, then Run once, then Cleanup) fails loudly with
// ErrContract, and a Recorder collects every such violation for tests.
package fake

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

// ErrContract means the caller broke the stage lifecycle contract.
var ErrContract = errors.New("stage lifecycle contract broken")

// Recorder collects lifecycle events and contract violations across the
// fake stages it made. The zero value is ready; it is safe for concurrent use.
type Recorder struct {
	mu         sync.Mutex
	violations []string
	calls      []string
}

// Violations returns every contract violation seen so far.
func (r *Recorder) Violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.violations)
}

// Calls returns the lifecycle calls in order, as "stage#attempt:Method".
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *Recorder) call(s string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *Recorder) violate(s string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.violations = append(r.violations, s)
	r.mu.Unlock()
}

// New returns the factory of the fake kind. rec may be nil.
func New(rec *Recorder) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.FakeSpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("fake stage needs a *pipeline.FakeSpec, got %T", spec)
		}
		return &Stage{spec: *s, rec: rec}, nil
	}
}

type phase int

const (
	created phase = iota
	validated
	running
	ran
	cleaned
)

// Stage is one scripted attempt.
type Stage struct {
	spec pipeline.FakeSpec
	rec  *Recorder

	mu    sync.Mutex
	phase phase
	name  string
}

// advance moves the lifecycle from one phase to the next, or reports the
// broken contract.
func (s *Stage) advance(method string, from []phase, to phase) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.call(s.name + ":" + method)
	if !slices.Contains(from, s.phase) {
		msg := fmt.Sprintf("%s: %s called in phase %d", s.name, method, s.phase)
		s.rec.violate(msg)
		return fmt.Errorf("%w: %s", ErrContract, msg)
	}
	s.phase = to
	return nil
}

// Validate checks nothing beyond what the pipeline file already checked.
func (s *Stage) Validate() error {
	return s.advance("Validate", []phase{created}, validated)
}

// Run plays the script for run.Attempt.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	s.mu.Lock()
	s.name = fmt.Sprintf("%s#%d", run.Stage, run.Attempt)
	s.mu.Unlock()
	if err := s.advance("Run", []phase{validated}, running); err != nil {
		return stages.Result{}, err
	}
	defer s.advance("Run returned", []phase{running}, ran)
	if run.Log == nil || run.Attempt < 1 {
		s.rec.violate(s.name + ": Run without a log or with attempt < 1")
		return stages.Result{}, fmt.Errorf("%w: Run without a log or attempt", ErrContract)
	}
	for _, line := range s.spec.Log {
		fmt.Fprintln(run.Log, line)
	}
	if err := s.sleep(ctx, run.Attempt); err != nil {
		return stages.Result{}, err
	}
	if err := s.failure(run.Attempt); err != nil {
		return stages.Result{}, err
	}
	return stages.Result{Outputs: s.spec.Outputs}, nil
}

func (s *Stage) sleep(ctx context.Context, attempt int) error {
	d := time.Duration(s.spec.Sleep)
	if d == 0 || (len(s.spec.SleepAttempts) > 0 && !slices.Contains(s.spec.SleepAttempts, attempt)) {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("fake stage interrupted while sleeping: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

func (s *Stage) failure(attempt int) error {
	var err error
	switch {
	case s.spec.ExitCode != 0:
		err = fmt.Errorf("fake stage exited with code %d", s.spec.ExitCode)
	case slices.Contains(s.spec.FailOnAttempts, attempt):
		err = fmt.Errorf("fake stage failed on attempt %d, as scripted", attempt)
	}
	if err != nil && s.spec.Retryable {
		return stages.Retryable(err)
	}
	return err
}

// Cleanup records that it ran; it must come after Run returned.
func (s *Stage) Cleanup(ctx context.Context, run *stages.Run) error {
	if err := s.advance("Cleanup", []phase{ran}, cleaned); err != nil {
		return err
	}
	fmt.Fprintf(run.Log, "fake: cleaned up after attempt %d\n", run.Attempt)
	return nil
}

var (
	_ stages.Stage   = (*Stage)(nil)
	_ stages.Cleaner = (*Stage)(nil)
)
