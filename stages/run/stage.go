// Package run is the run stage kind: commands in any image, in the run's
// checkout — a test suite before the build, a linter — executed as a Pod
// (executor: kubernetes, package pods). The pipeline's env and the
// stage's env are its environment; the secrets it names are variables of
// the same name, read from the attempt's Secret.
package run

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/pods"
)

// Stage is one attempt of a run stage.
type Stage struct {
	spec pipeline.RunSpec
	pods *pods.Runner
}

// New returns the factory of the run kind; runner is where its Pods run
// (nil: the engine has no cluster, and such stages fail saying so).
func New(runner *pods.Runner) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.RunSpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("run stage needs a *pipeline.RunSpec, got %T", spec)
		}
		return &Stage{spec: *s, pods: runner}, nil
	}
}

// Validate checks what can be checked before the run.
func (s *Stage) Validate() error {
	if s.pods == nil {
		return pods.ErrNoCluster
	}
	return nil
}

// Run runs the commands in a Pod on the checkout and fails with their
// exit code.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	checkout, err := pods.CheckoutOf(run)
	if err != nil {
		return stages.Result{}, fmt.Errorf("run stage: %w", err)
	}
	env := map[string]string{}
	for k, v := range run.Env {
		env[k] = v
	}
	for k, v := range s.spec.Env {
		env[k] = v
	}
	secrets := map[string]string{}
	for _, name := range s.spec.Secrets {
		v, ok := run.Secrets[name]
		if !ok {
			return stages.Result{}, fmt.Errorf("secret %s is not available to this run", name)
		}
		secrets[name] = v
		delete(env, name)
	}
	spec := pods.Spec{Role: "run", Image: s.spec.Image, Command: []string{"/bin/sh", "-c", Script(s.spec.Commands)},
		Env: env, Secrets: secrets, Checkout: checkout}
	if err := spec.Place(s.spec.Pod); err != nil {
		return stages.Result{}, err
	}
	out, err := s.pods.Run(ctx, run, spec)
	if err != nil {
		return stages.Result{}, err
	}
	if out.ExitCode != 0 {
		return stages.Result{}, fmt.Errorf("a command failed in pod %s (exit code %d); its output is above", out.Pod, out.ExitCode)
	}
	return stages.Result{Outputs: map[string]string{"exitCode": strconv.Itoa(int(out.ExitCode))}}, nil
}

// Script is the shell script of commands: each is printed ("+ command")
// before it runs, and the first that fails ends the script with its
// status. The command is printed as written, before the shell expands
// anything in it.
func Script(commands []string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "printf '+ %%s\\n' %s\n%s\n", shellQuote(c), c)
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
