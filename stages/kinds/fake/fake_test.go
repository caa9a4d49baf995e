package fake

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

func newStage(t *testing.T, rec *Recorder, spec pipeline.FakeSpec) stages.Stage {
	t.Helper()
	s, err := New(rec)(&spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runOf(attempt int, log *bytes.Buffer) *stages.Run {
	return &stages.Run{Stage: "s", Attempt: attempt, Log: log}
}

func TestScript(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	s := newStage(t, nil, pipeline.FakeSpec{Log: []string{"a", "b"}, Outputs: map[string]string{"k": "v"}})
	s.Validate()
	res, err := s.Run(context.Background(), runOf(1, &log))
	if err != nil || res.Outputs["k"] != "v" || log.String() != "a\nb\n" {
		t.Errorf("Run = %v %v, log %q", res, err, log.String())
	}
	s = newStage(t, nil, pipeline.FakeSpec{FailOnAttempts: []int{2}, Retryable: true})
	s.Validate()
	if _, err := s.Run(context.Background(), runOf(2, &log)); err == nil || !stages.IsRetryable(err) {
		t.Errorf("attempt 2 should fail retryably: %v", err)
	}
	s = newStage(t, nil, pipeline.FakeSpec{ExitCode: 4})
	s.Validate()
	if _, err := s.Run(context.Background(), runOf(1, &log)); err == nil || stages.IsRetryable(err) || !strings.Contains(err.Error(), "code 4") {
		t.Errorf("exit code 4: %v", err)
	}
}

func TestSleepHonoursCancellation(t *testing.T) {
	t.Parallel()
	s := newStage(t, nil, pipeline.FakeSpec{Sleep: pipeline.Duration(time.Hour)})
	s.Validate()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Run(ctx, runOf(1, &bytes.Buffer{}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run on a cancelled context = %v", err)
	}
}

func TestBrokenLifecycleFailsLoudly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name  string
		drive func(s stages.Stage) error
	}{
		{"Run before Validate", func(s stages.Stage) error {
			_, err := s.Run(ctx, runOf(1, &bytes.Buffer{}))
			return err
		}},
		{"Run twice", func(s stages.Stage) error {
			s.Validate()
			s.Run(ctx, runOf(1, &bytes.Buffer{}))
			_, err := s.Run(ctx, runOf(1, &bytes.Buffer{}))
			return err
		}},
		{"Cleanup before Run", func(s stages.Stage) error {
			s.Validate()
			return s.(stages.Cleaner).Cleanup(ctx, runOf(1, &bytes.Buffer{}))
		}},
		{"Validate twice", func(s stages.Stage) error {
			s.Validate()
			return s.Validate()
		}},
		{"Run without a log", func(s stages.Stage) error {
			s.Validate()
			_, err := s.Run(ctx, &stages.Run{Stage: "s", Attempt: 1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Recorder{}
			err := tt.drive(newStage(t, rec, pipeline.FakeSpec{}))
			if !errors.Is(err, ErrContract) || len(rec.Violations()) == 0 {
				t.Errorf("err = %v, violations %v", err, rec.Violations())
			}
		})
	}
}

func TestFactoryRefusesOtherSpecs(t *testing.T) {
	t.Parallel()
	if _, err := New(nil)(&pipeline.BuildSpec{}); err == nil {
		t.Error("fake factory accepted a build spec")
	}
}
