package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Local runs the Kaniko executor on this machine, inside a sandbox made
// fresh for each build: a throw-away root directory holding the executor,
// CA certificates, registry credentials and a copy of the build context;
// new mount and PID namespaces (unshare); /dev bound and a fresh /proc
// mounted inside; then chroot. Kaniko unpacks base images into its "/",
// which is that throw-away root, never the machine's. The root is removed
// after the build, whatever its outcome; the namespaces die with the
// executor, taking their mounts with them. It needs root.
type Local struct {
	Executor string // the static Kaniko executor
	WorkRoot string // where sandboxes are made (default: os.TempDir())
	CACerts  string // default /etc/ssl/certs/ca-certificates.crt
}

// sandboxScript runs as PID 1's child in the new namespaces.
const sandboxScript = `set -e
root=$1; shift
executor_path=$PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount --make-rprivate /
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
chroot=$(command -v chroot)
PATH=$executor_path exec "$chroot" "$root" /kaniko/executor "$@"
`

// Build builds req in a fresh sandbox.
func (l *Local) Build(ctx context.Context, req Request, log io.Writer) (Result, error) {
	if _, err := os.Stat(l.Executor); err != nil {
		return Result{}, fmt.Errorf("kaniko executor: %w (run `make tools`)", err)
	}
	root, err := os.MkdirTemp(l.WorkRoot, "kaniko-root-")
	if err != nil {
		return Result{}, fmt.Errorf("making the build sandbox: %w", err)
	}
	defer removeSandbox(root, log)
	if err := l.prepare(root, req); err != nil {
		return Result{}, fmt.Errorf("preparing the build sandbox: %w", err)
	}
	args := append([]string{"--mount", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c", sandboxScript, "sandbox", root, "--force"},
		executorArgs(req, "/workspace", "/kaniko/build/Dockerfile", "/kaniko/digest")...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = []string{"PATH=/usr/local/bin:/kaniko:/bin", "HOME=/root", "USER=root",
		"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/"}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("kaniko build interrupted: %w", ctx.Err())
		}
		return Result{}, fmt.Errorf("kaniko build failed: %w", err)
	}
	digest, err := os.ReadFile(filepath.Join(root, "kaniko", "digest"))
	if err != nil {
		return Result{}, fmt.Errorf("kaniko wrote no digest file: %w", err)
	}
	d := strings.TrimSpace(string(digest))
	if !strings.HasPrefix(d, "sha256:") {
		return Result{}, fmt.Errorf("kaniko's digest file holds %q, not a sha256 digest", d)
	}
	return Result{Digest: d}, nil
}

// prepare lays out the sandbox root.
func (l *Local) prepare(root string, req Request) error {
	for _, d := range []string{"dev", "proc", "kaniko/ssl/certs", "kaniko/.docker", "kaniko/build", "workspace", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := linkOrCopy(l.Executor, filepath.Join(root, "kaniko", "executor"), 0o755); err != nil {
		return err
	}
	certs := l.CACerts
	if certs == "" {
		certs = "/etc/ssl/certs/ca-certificates.crt"
	}
	if err := copyFile(certs, filepath.Join(root, "kaniko", "ssl", "certs", "ca-certificates.crt"), 0o644); err != nil {
		return fmt.Errorf("CA certificates: %w", err)
	}
	config := req.DockerConfig
	if config == nil {
		config = []byte(`{"auths":{}}`)
	}
	if err := os.WriteFile(filepath.Join(root, "kaniko", ".docker", "config.json"), config, 0o600); err != nil {
		return err
	}
	if err := copyFile(req.Dockerfile, filepath.Join(root, "kaniko", "build", "Dockerfile"), 0o644); err != nil {
		return fmt.Errorf("Dockerfile: %w", err)
	}
	return copyTree(req.ContextDir, filepath.Join(root, "workspace"))
}

// removeSandbox deletes a sandbox root — but never while anything is still
// mounted under it (that would reach through to the machine's /dev).
func removeSandbox(root string, log io.Writer) {
	if mounted, err := mountedUnder(root); err != nil || mounted != "" {
		fmt.Fprintf(log, "slipway: NOT removing build sandbox %s: %s is still mounted (%v)\n", root, mounted, err)
		return
	}
	if err := os.RemoveAll(root); err != nil {
		fmt.Fprintf(log, "slipway: removing build sandbox %s: %v\n", root, err)
	}
}

// mountedUnder returns a mount point at or below dir, as this process sees them.
func mountedUnder(dir string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			return fields[4], nil
		}
	}
	return "", sc.Err()
}

// linkOrCopy hard-links src to dst when they share a filesystem, and
// copies it otherwise.
func linkOrCopy(src, dst string, mode fs.FileMode) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst, mode)
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a build context: files, directories and symlinks (as
// links; inside the sandbox they resolve inside it). The .git directory
// at the top is left out.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == ".git" && d.IsDir() {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return errors.New("build context holds " + rel + ", which is neither a file, a directory nor a symlink")
	})
}

var _ Builder = (*Local)(nil)

// SandboxVersion runs `executor version` in a fresh sandbox: the sandbox's
// whole cost (root, namespaces, mounts, chroot, removal) around a command
// that does nothing. For benchmarks.
func SandboxVersion(ctx context.Context, l *Local) error {
	root, err := os.MkdirTemp(l.WorkRoot, "kaniko-root-")
	if err != nil {
		return err
	}
	defer removeSandbox(root, io.Discard)
	if err := l.prepare(root, Request{ContextDir: root + "/workspace", Dockerfile: "/dev/null"}); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c", sandboxScript, "sandbox", root, "version")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}
