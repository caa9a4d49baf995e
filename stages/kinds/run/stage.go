// Package run is the run stage kind: commands in any image, in the run's
// checkout — a test suite before the build, a linter — executed in the
// engine's sandbox in the image's filesystem (executor: local, Local) or
// as a Pod (executor: kubernetes, package pods). The pipeline's env and
// the stage's env are its environment; the secrets it names are variables
// of the same name (in a Pod, read from the attempt's Secret).
package run

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/pods"
)

// Stage is one attempt of a run stage.
type Stage struct {
	spec  pipeline.RunSpec
	local *Local
	pods  *pods.Runner
}

// New returns the factory of the run kind; local runs executor: local,
// runner is where Pods run (nil: the engine has no cluster, and such
// stages fail saying so).
func New(local *Local, runner *pods.Runner) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.RunSpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("run stage needs a *pipeline.RunSpec, got %T", spec)
		}
		return &Stage{spec: *s, local: local, pods: runner}, nil
	}
}

// Validate checks what can be checked before the run.
func (s *Stage) Validate() error {
	if s.spec.Executor == "kubernetes" && s.pods == nil {
		return pods.ErrNoCluster
	}
	return nil
}

// Run runs the commands on the checkout and fails with their exit code.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	env, secrets, err := s.environment(run)
	if err != nil {
		return stages.Result{}, err
	}
	if s.spec.Executor == "kubernetes" {
		err = s.inPod(ctx, run, env, secrets)
	} else {
		err = s.inSandbox(ctx, run, env, secrets)
	}
	if err != nil {
		return stages.Result{}, err
	}
	return stages.Result{Outputs: map[string]string{"exitCode": "0"}}, nil
}

// inSandbox runs the commands in this machine's sandbox.
func (s *Stage) inSandbox(ctx context.Context, run *stages.Run, env, secrets map[string]string) error {
	maps.Copy(env, secrets)
	code, err := s.local.Run(ctx, Job{Image: s.spec.Image, Script: Script(s.spec.Commands), Env: env, Checkout: run.Workdir}, run.Log)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("a command failed in the sandbox (exit code %d); its output is above", code)
	}
	return nil
}

// environment is the stage's plain variables (the pipeline's env, then
// the stage's) and its secrets.
func (s *Stage) environment(run *stages.Run) (env, secrets map[string]string, err error) {
	env, secrets = map[string]string{}, map[string]string{}
	maps.Copy(env, run.Env)
	maps.Copy(env, s.spec.Env)
	for _, name := range s.spec.Secrets {
		v, ok := run.Secrets[name]
		if !ok {
			return nil, nil, fmt.Errorf("secret %s is not available to this run", name)
		}
		secrets[name] = v
		delete(env, name)
	}
	return env, secrets, nil
}

// inPod runs the commands in a Pod.
func (s *Stage) inPod(ctx context.Context, run *stages.Run, env, secrets map[string]string) error {
	checkout, err := pods.CheckoutOf(run)
	if err != nil {
		return fmt.Errorf("run stage: %w", err)
	}
	spec := pods.Spec{Role: "run", Image: s.spec.Image, Command: []string{"/bin/sh", "-c", Script(s.spec.Commands)},
		Env: env, Secrets: secrets, Checkout: checkout}
	if err := spec.Place(s.spec.Pod); err != nil {
		return err
	}
	out, err := s.pods.Run(ctx, run, spec)
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("a command failed in pod %s (exit code %d); its output is above", out.Pod, out.ExitCode)
	}
	return nil
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
