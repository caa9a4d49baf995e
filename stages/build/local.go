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
	"runtime"
	"strings"
	"syscall"

	"github.com/slipwayci/slipway/stages/toollog"
)

// Local runs the Kaniko executor on this machine, inside a sandbox made
// fresh for each build: a throw-away root directory holding the executor,
// CA certificates, the build's registry credentials and a copy of the
// build context, then chroot. The executor is root only inside a user
// namespace whose IDs map to an unprivileged range outside (IDBase…), so
// it holds no capability over the machine; new mount, PID, network, IPC
// and UTS namespaces; a /dev of null, zero, full, random, urandom and tty
// only; a fresh /proc showing only the build's processes; a network of its
// own with nothing but loopback, where the registries on this machine the
// build names are forwarded in (see netns.go) and nothing else — not the
// engine's API, etcd or Argo CD. Kaniko unpacks base images into its "/",
// the throw-away root; the root is removed after the build, whatever its
// outcome. The engine must run as root (to map the ID range).
//
// This is the sandbox for one machine; on a cluster, builds run as Pods
// (executor: kubernetes).
type Local struct {
	Executor string // the static Kaniko executor
	WorkRoot string // where sandboxes are made (default: os.TempDir())
	CACerts  string // default /etc/ssl/certs/ca-certificates.crt
	IDBase   int    // first host UID/GID of the sandbox's 65536 IDs (default 100000)
}

// sandboxIDs is how many user and group IDs a sandbox maps.
const sandboxIDs = 65536

// DefaultIDBase is the first host ID a sandbox maps to root inside.
const DefaultIDBase = 100000

// sandboxScript runs as PID 1 of the new namespaces (root of the user
// namespace): loopback up, a minimal /dev, a fresh /proc; it tells the
// engine it is ready (fd 3) and waits for the registries to be forwarded
// into its network (fd 4) before it becomes the executor.
const sandboxScript = `set -e
root=$1; shift
executor_path=$PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up
mount --make-rprivate /
for d in null zero full random urandom tty; do : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mount -t proc proc "$root/proc"
echo ready >&3
read -r go <&4
exec 3>&- 4<&-
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
	args := append([]string{"--force"}, executorArgs(req, "/workspace", "/kaniko/build/Dockerfile", "/kaniko/digest")...)
	if err := l.run(ctx, root, loopbackRegistries(req), args, log); err != nil {
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

// run runs the executor with args in the sandbox rooted at root, with
// registries forwarded into its network.
func (l *Local) run(ctx context.Context, root string, registries, args []string, out io.Writer) error {
	base := l.IDBase
	if base == 0 {
		base = DefaultIDBase
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return err
	}
	defer goW.Close()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", sandboxScript, "sandbox", root}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/bin:/kaniko:/bin", "HOME=/root", "USER=root",
		"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/"}
	logs := toollog.NewWriter(out, "kaniko") // Kaniko's logrus lines read like the run log's
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.ExtraFiles = []*os.File{readyW, goR} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: sandboxIDs}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: base, Size: sandboxIDs}},
		Credential:  &syscall.Credential{Uid: 0, Gid: 0},
		Pdeathsig:   syscall.SIGKILL,
		Setpgid:     true,
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Pdeathsig fires when the *thread* that forked dies, and Go ends the
	// threads of goroutines that exit locked (forward's do): fork from a
	// thread held locked until the sandbox has ended.
	started, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	err = <-started
	readyW.Close()
	goR.Close()
	if err != nil {
		return fmt.Errorf("starting the sandbox: %w", err)
	}
	ready := make([]byte, 6)
	if _, err := io.ReadFull(readyR, ready); err != nil {
		return fmt.Errorf("the sandbox did not start: %w", <-waited)
	}
	fwd, err := forward(ctx, cmd.Process.Pid, registries)
	if err != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return err
	}
	defer fwd.Close()
	if _, err := io.WriteString(goW, "go\n"); err != nil {
		return fmt.Errorf("starting the executor: %w: %w", err, <-waited)
	}
	goW.Close()
	return <-waited
}

// prepare lays out the sandbox root.
func (l *Local) prepare(root string, req Request) error {
	// The root is the image's "/" too: 0755 as in a container, not
	// MkdirTemp's 0700 (a FROM scratch image kept it, and its non-root
	// users could not enter "/").
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
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
	if err := copyTree(req.ContextDir, filepath.Join(root, "workspace")); err != nil {
		return err
	}
	return l.handOver(root)
}

// handOver gives the sandbox root to the sandbox's root user (IDBase
// outside) — all but the executor and the CA certificates, which stay the
// machine's and read-only inside (the executor is a hard link to the
// tools cache).
func (l *Local) handOver(root string) error {
	base := l.IDBase
	if base == 0 {
		base = DefaultIDBase
	}
	keep := map[string]bool{filepath.Join(root, "kaniko", "executor"): true, filepath.Join(root, "kaniko", "ssl", "certs", "ca-certificates.crt"): true}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || keep[path] {
			return err
		}
		return os.Lchown(path, base, base)
	})
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
	var out strings.Builder
	if err := l.run(ctx, root, nil, []string{"version"}, &out); err != nil {
		return fmt.Errorf("%v: %s", err, out.String())
	}
	return nil
}
