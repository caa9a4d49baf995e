package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slipwayci/slipway/stages/sandbox"
	"github.com/slipwayci/slipway/stages/toollog"
)

// Local runs the Kaniko executor on this machine, in a sandbox made fresh
// for each build (package sandbox): the throw-away root holds the
// executor, CA certificates, the build's registry credentials and a copy
// of the build context; the registries on this machine the build names
// are forwarded into its network. Kaniko unpacks base images into its
// "/", the throw-away root. The engine must run as root (to map the ID
// range).
//
// This is the sandbox for one machine; on a cluster, builds run as Pods
// (executor: kubernetes).
type Local struct {
	Executor string // the static Kaniko executor
	WorkRoot string // where sandboxes are made (default: os.TempDir())
	CACerts  string // default /etc/ssl/certs/ca-certificates.crt
	IDBase   int    // first host UID/GID of the sandbox's IDs (default sandbox.DefaultIDBase)
	// Registries are the registries on this machine (host:port on
	// loopback) a build may reach: a build naming another one is refused
	// before its sandbox is made. nil relays every one the build names —
	// `slipway run`, on one's own machine; an engine passes its config's
	// list (sandbox.registries), so that no Dockerfile reaches its API,
	// its database or etcd by naming their port.
	Registries []string
}

// kanikoEnv is the executor's environment, as in its official image.
var kanikoEnv = []string{"PATH=/usr/local/bin:/kaniko:/bin", "HOME=/root", "USER=root",
	"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/"}

// Build builds req in a fresh sandbox.
func (l *Local) Build(ctx context.Context, req Request, log io.Writer) (Result, error) {
	if _, err := os.Stat(l.Executor); err != nil {
		return Result{}, fmt.Errorf("kaniko executor: %w (run `make tools`)", err)
	}
	registries, err := l.reachable(req)
	if err != nil {
		return Result{}, err
	}
	root, err := sandbox.NewRoot(l.WorkRoot, "kaniko-root-", l.IDBase)
	if err != nil {
		return Result{}, fmt.Errorf("making the build sandbox: %w", err)
	}
	defer root.Remove(log)
	if err := l.prepare(root, req); err != nil {
		return Result{}, fmt.Errorf("preparing the build sandbox: %w", err)
	}
	args := append([]string{"--force"}, executorArgs(req, "/workspace", "/kaniko/build/Dockerfile", "/kaniko/digest")...)
	if err := l.run(ctx, root, registries, args, log); err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("kaniko build interrupted: %w", ctx.Err())
		}
		return Result{}, fmt.Errorf("kaniko build failed: %w", err)
	}
	// The build's RUN steps could write anything there (a link to a file
	// of this machine): read beneath the root, small, and never echoed.
	digest, err := root.ReadSmall("kaniko/digest", 128)
	if err != nil {
		return Result{}, fmt.Errorf("reading the digest kaniko wrote: %w", err)
	}
	d := strings.TrimSpace(string(digest))
	if !digestRE.MatchString(d) {
		return Result{}, fmt.Errorf("kaniko's digest file (%d bytes) does not hold a sha256 digest", len(digest))
	}
	return Result{Digest: d}, nil
}

// run runs the executor with args in the sandbox, with registries
// forwarded into its network; Kaniko's logrus lines are rewritten to read
// like the run log's.
func (l *Local) run(ctx context.Context, root *sandbox.Root, registries, args []string, out io.Writer) error {
	logs := toollog.NewWriter(out, "kaniko")
	defer logs.Close()
	return root.Run(ctx, sandbox.Command{Path: "/kaniko/executor", Args: args, Env: kanikoEnv, Registries: registries, Output: logs})
}

// prepare lays out the sandbox root.
func (l *Local) prepare(root *sandbox.Root, req Request) error {
	for _, d := range []string{"kaniko/ssl/certs", "kaniko/.docker", "kaniko/build", "workspace", "root"} {
		if err := os.MkdirAll(root.Path(d), 0o755); err != nil {
			return err
		}
	}
	executor, certsIn := root.Path("kaniko/executor"), root.Path("kaniko/ssl/certs/ca-certificates.crt")
	if err := sandbox.LinkOrCopy(l.Executor, executor, 0o755); err != nil {
		return err
	}
	certs := l.CACerts
	if certs == "" {
		certs = "/etc/ssl/certs/ca-certificates.crt"
	}
	if err := sandbox.CopyFile(certs, certsIn, 0o644); err != nil {
		return fmt.Errorf("CA certificates: %w", err)
	}
	config := req.DockerConfig
	if config == nil {
		config = []byte(`{"auths":{}}`)
	}
	if err := os.WriteFile(root.Path("kaniko/.docker/config.json"), config, 0o600); err != nil {
		return err
	}
	if err := sandbox.CopyFile(req.Dockerfile, root.Path("kaniko/build/Dockerfile"), 0o644); err != nil {
		return fmt.Errorf("Dockerfile: %w", err)
	}
	if err := root.CopyIn(req.ContextDir, "workspace"); err != nil {
		return err
	}
	// The executor (a hard link to the tools cache) and the CA
	// certificates stay the machine's, read-only inside.
	return root.HandOver(executor, certsIn)
}

var _ Builder = (*Local)(nil)

// SandboxVersion runs `executor version` in a fresh sandbox: the sandbox's
// whole cost (root, namespaces, mounts, chroot, removal) around a command
// that does nothing. For benchmarks.
func SandboxVersion(ctx context.Context, l *Local) error {
	root, err := sandbox.NewRoot(l.WorkRoot, "kaniko-root-", l.IDBase)
	if err != nil {
		return err
	}
	defer root.Remove(io.Discard)
	if err := l.prepare(root, Request{ContextDir: root.Path("workspace"), Dockerfile: "/dev/null"}); err != nil {
		return err
	}
	var out strings.Builder
	if err := l.run(ctx, root, nil, []string{"version"}, &out); err != nil {
		return fmt.Errorf("%v: %s", err, out.String())
	}
	return nil
}
