package run

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/pods"
)

// The script prints each command as written (before the shell expands
// it), runs it, and stops at the first that fails, with its status.
func TestScriptPrintsRunsAndStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/bin/sh", "-c", Script([]string{`echo "it's $WHO"`, "exit 3", "echo never"}))
	cmd.Env = []string{"WHO=me"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v", err)
	}
	if want := "+ echo \"it's $WHO\"\nit's me\n+ exit 3\n"; string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestRunStageNeedsACluster(t *testing.T) {
	t.Parallel()
	s, err := New(&Local{}, nil)(&pipeline.RunSpec{Image: "busybox", Commands: []string{"true"}, Executor: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != pods.ErrNoCluster {
		t.Errorf("Validate without a cluster = %v", err)
	}
}
