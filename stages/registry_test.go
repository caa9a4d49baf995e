package stages

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
)

type nop struct{}

func (nop) Validate() error                           { return nil }
func (nop) Run(context.Context, *Run) (Result, error) { return Result{}, nil }
func newNop(spec any) (Stage, error)                  { return nop{}, nil }
func failing(spec any) (Stage, error)                 { return nil, errors.New("bad spec") }

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	if err := r.Register("clone", newNop); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("build", failing); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("clone", newNop); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("duplicate registration: %v", err)
	}
	if err := r.Register("", newNop); err == nil {
		t.Error("empty kind name accepted")
	}
	if err := r.Register("kubectl", newNop); err == nil || !strings.Contains(err.Error(), "not a kind a pipeline file can name") {
		t.Errorf("a kind outside pipeline.Kinds: %v", err)
	}
	p := &pipeline.Pipeline{Stages: []pipeline.Stage{{Name: "c", Clone: &pipeline.CloneSpec{}}, {Name: "s", Scan: &pipeline.ScanSpec{}}}}
	if err := r.Check(p); err == nil || err.Error() != `stages[1] (s): stage kind "scan" is not available in this engine (available: build, clone)` {
		t.Errorf("Check of a pipeline with a missing kind: %v", err)
	}
	if err := r.Check(&pipeline.Pipeline{Stages: p.Stages[:1]}); err != nil {
		t.Errorf("Check of a pipeline this registry runs: %v", err)
	}
	if _, err := r.New("clone", nil); err != nil {
		t.Errorf("New(clone): %v", err)
	}
	if _, err := r.New("build", nil); err == nil || err.Error() != "creating build stage: bad spec" {
		t.Errorf("New(build) = %v", err)
	}
	_, err := r.New("canary", nil)
	if err == nil || err.Error() != `stage kind "canary" is not available in this engine (available: build, clone)` {
		t.Errorf("New(unknown) = %v", err)
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	base := errors.New("registry answered 503")
	err := fmt.Errorf("pushing: %w", Retryable(base))
	if !IsRetryable(err) || !errors.Is(err, base) || err.Error() != "pushing: registry answered 503" {
		t.Errorf("wrapped retryable: %v (retryable %v)", err, IsRetryable(err))
	}
	if IsRetryable(base) || Retryable(nil) != nil {
		t.Error("plain errors must not be retryable; Retryable(nil) must be nil")
	}
}
