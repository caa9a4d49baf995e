package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/stages/sandbox"
)

// Local runs a stage's commands on this machine in the rootless sandbox
// (package sandbox), in the image's root filesystem: the image is pulled
// by the engine (anonymously), unpacked into a throw-away root, the
// checkout copied to /workspace/src, and /bin/sh runs the script there as
// root of the sandbox's user namespace — no capability over the machine,
// and a network of loopback only: the commands reach nothing, not even
// the registry or the git server.
type Local struct {
	WorkRoot string // where sandboxes are made (default os.TempDir())
	IDBase   int    // first host ID of the sandbox's range (default sandbox.DefaultIDBase)
}

// Job is one run of commands.
type Job struct {
	Image    string
	Script   string
	Env      map[string]string // the pipeline's and the stage's, and the secrets
	Checkout string            // the run's checkout on this machine
}

// Run runs the job and returns the script's exit code; an error is a job
// that could not run (the image not pulled, the sandbox not made).
func (l *Local) Run(ctx context.Context, job Job, log io.Writer) (int, error) {
	ref, err := name.ParseReference(job.Image)
	if err != nil {
		return 0, fmt.Errorf("image %q: %w", job.Image, err)
	}
	fmt.Fprintf(log, "slipway: pulling %s\n", ref)
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return 0, fmt.Errorf("pulling %s: %w", job.Image, err)
	}
	config, err := img.ConfigFile()
	if err != nil {
		return 0, fmt.Errorf("reading the config of %s: %w", job.Image, err)
	}
	root, err := sandbox.NewRoot(l.WorkRoot, "run-root-", l.IDBase)
	if err != nil {
		return 0, err
	}
	defer root.Remove(log)
	if err := root.Unpack(img, 0); err != nil {
		return 0, fmt.Errorf("unpacking %s: %w", job.Image, err)
	}
	if err := copyCheckout(root, job.Checkout, "workspace/src"); err != nil {
		return 0, fmt.Errorf("copying the checkout into the sandbox: %w", err)
	}
	if err := root.HandOver(); err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "slipway: running in %s, in this machine's sandbox (no network)\n", ref)
	err = root.Run(ctx, sandbox.Command{Path: "/bin/sh", Args: []string{"-c", "cd /workspace/src || exit 1\n" + job.Script},
		Env: environment(config.Config.Env, job.Env), Output: log})
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case ctx.Err() != nil:
		return 0, fmt.Errorf("interrupted: %w", ctx.Err())
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode(), nil
	}
	return 0, fmt.Errorf("running the commands in the sandbox: %w", err)
}

// environment is the image's environment (its PATH), then HOME, then the
// job's, each name once.
func environment(image []string, job map[string]string) []string {
	env := map[string]string{"HOME": "/root", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, kv := range image {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	maps.Copy(env, job)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// copyCheckout copies the run's checkout to dst inside root, where the
// image is already unpacked (writes cannot follow its links out, see
// Root.CopyIn); a run that checked nothing out (no clone stage came
// first) gets an empty directory.
func copyCheckout(root *sandbox.Root, checkout, dst string) error {
	if _, err := os.Stat(checkout); errors.Is(err, fs.ErrNotExist) {
		empty, err := os.MkdirTemp("", "slipway-empty-")
		if err != nil {
			return err
		}
		defer os.Remove(empty)
		checkout = empty
	}
	return root.CopyIn(checkout, dst)
}
