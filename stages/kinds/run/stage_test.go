package run

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/pods"
	"github.com/slipwayci/slipway/stages/sandbox"
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

// A run that checked nothing out runs its commands in an empty directory;
// a checkout is copied where the commands run.
func TestCopyCheckout(t *testing.T) {
	t.Parallel()
	newRoot := func() *sandbox.Root {
		root, err := sandbox.NewRoot(t.TempDir(), "run-root-", 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { root.Remove(io.Discard) })
		return root
	}
	root := newRoot()
	if err := copyCheckout(root, filepath.Join(t.TempDir(), "never-made"), "workspace/src"); err != nil {
		t.Fatalf("no checkout: %v", err)
	}
	if entries, err := os.ReadDir(root.Path("workspace/src")); err != nil || len(entries) != 0 {
		t.Errorf("no checkout: workspace/src holds %v, %v; want an empty directory", entries, err)
	}
	checkout, root := t.TempDir(), newRoot()
	if err := os.WriteFile(filepath.Join(checkout, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyCheckout(root, checkout, "workspace/src"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(root.Path("workspace/src/main.go")); err != nil || string(b) != "package main\n" {
		t.Errorf("checkout copied as %q, %v", b, err)
	}
}
