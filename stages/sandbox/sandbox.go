// Package sandbox runs untrusted work on the engine's machine — a Kaniko
// build, a run stage's commands — inside a sandbox made fresh for each
// attempt: a throw-away root directory, made the root of a mount namespace
// of its own (pivot_root, the machine's root detached). The work is root only
// inside a user namespace whose IDs map to an unprivileged range outside
// (IDBase…), so it holds no capability over the machine; new mount, PID,
// network, IPC and UTS namespaces; a /dev of null, zero, full, random,
// urandom and tty only; a fresh /proc showing only the sandbox's
// processes; a network of its own with nothing but loopback, where the
// registries on this machine the work names are forwarded in (netns.go)
// and nothing else — not the engine's API, etcd or Argo CD. The root is
// removed afterwards, whatever the outcome. The engine must run as root
// (to map the ID range).
package sandbox

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
)

// IDs is how many user and group IDs a sandbox maps.
const IDs = 65536

// DefaultIDBase is the first host ID a sandbox maps to root inside.
const DefaultIDBase = 100000

// Root is a sandbox's root directory on this machine.
type Root struct {
	Dir    string
	own    string // the directory holding Dir, made for this sandbox
	idBase int
	ids    *idRange // the range held for it, when it was given one
}

// NewRoot makes a root directory for one sandbox under workRoot (default
// a slipway-sandboxes directory in os.TempDir(), see home), in a
// directory of its own named prefix followed by random characters, with
// the mount points the sandbox needs; idBase is the first host ID of its
// range (0: a range of its own, held until Remove, see Ranges).
func NewRoot(workRoot, prefix string, idBase int) (*Root, error) {
	var ids *idRange
	switch {
	case idBase == 0 && os.Geteuid() != 0: // no ID can be mapped without root: nothing runs, files are only copied
		idBase = DefaultIDBase
	case idBase == 0:
		var err error
		if ids, err = takeRange(); err != nil {
			return nil, fmt.Errorf("making the sandbox: %w", err)
		}
		idBase = ids.base
	}
	base, err := home(workRoot)
	if err != nil {
		ids.release()
		return nil, fmt.Errorf("making the sandbox: %w", err)
	}
	own, err := os.MkdirTemp(base, prefix)
	if err != nil {
		ids.release()
		return nil, fmt.Errorf("making the sandbox: %w", err)
	}
	r := &Root{Dir: filepath.Join(own, "root"), own: own, idBase: idBase, ids: ids}
	// Its own directory is entered by this machine's root and by the
	// sandbox's root (its group), which must reach the root to mount it;
	// not by another sandbox, nor by anyone else here. The root is an
	// image's "/" too: 0755 as in a container (a FROM scratch image kept
	// it, and its non-root users could not enter "/").
	err = os.Chmod(own, 0o710)
	if err == nil && os.Geteuid() == 0 {
		err = os.Lchown(own, 0, idBase)
	}
	if err == nil {
		err = os.Mkdir(r.Dir, 0o755)
	}
	if err != nil {
		r.Remove(io.Discard)
		return nil, fmt.Errorf("making the sandbox: %w", err)
	}
	for _, d := range []string{"dev", "proc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r.Dir, d), 0o755); err != nil {
			r.Remove(io.Discard)
			return nil, err
		}
	}
	return r, nil
}

// home is the directory sandboxes are made in: workRoot, or
// slipway-sandboxes in os.TempDir(). It is a directory (not a link) of
// this process's user, which only that user may list: 0711, since a
// sandbox's root must pass through it to reach its own directory.
func home(workRoot string) (string, error) {
	dir := workRoot
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "slipway-sandboxes")
	}
	if err := os.Mkdir(dir, 0o711); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%s is not a directory of this engine's user: sandboxes are not made there", dir)
	}
	return dir, os.Chmod(dir, 0o711)
}

// Path is name (slash-separated, relative to the root) on this machine.
func (r *Root) Path(name string) string {
	return filepath.Join(r.Dir, filepath.FromSlash(name))
}

// HandOver gives everything under the root to the sandbox's users (uid
// and gid 0 inside are IDBase outside; an owner already in the range is
// kept) — but keep, which stay the machine's and read-only inside.
func (r *Root) HandOver(keep ...string) error {
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	return filepath.WalkDir(r.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || kept[path] {
			return err
		}
		uid, gid := r.idBase, r.idBase
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) >= r.idBase && int(st.Uid) < r.idBase+IDs {
				uid, gid = int(st.Uid), int(st.Gid)
			}
		}
		return os.Lchown(path, uid, gid)
	})
}

// Remove deletes the root — but never while anything is still mounted
// under it (that would reach through to the machine's /dev); problems are
// written to log.
func (r *Root) Remove(log io.Writer) {
	if mounted, err := mountedUnder(r.own); err != nil || mounted != "" {
		fmt.Fprintf(log, "slipway: NOT removing sandbox %s: %s is still mounted (%v)\n", r.Dir, mounted, err)
		return // its ID range stays held: what it owns is not another's to reach
	}
	if err := os.RemoveAll(r.own); err != nil {
		fmt.Fprintf(log, "slipway: removing sandbox %s: %v\n", r.Dir, err)
		return
	}
	r.ids.release()
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

// freshMountPoints makes dev and proc empty directories of the sandbox's
// own, whatever an image put there (a link from dev/null to a file of
// this machine would have the script write through it), before anything
// is mounted on them.
func (r *Root) freshMountPoints() error {
	fsys, err := os.OpenRoot(r.Dir)
	if err != nil {
		return err
	}
	defer fsys.Close()
	for _, d := range []string{"dev", "proc"} {
		if err := fsys.RemoveAll(d); err != nil {
			return err
		}
		if err := fsys.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := fsys.Lchown(d, r.idBase, r.idBase); err != nil {
			return err
		}
	}
	return nil
}

// Command is what runs in the sandbox: Path (inside the root) with Args,
// and exactly Env as its environment.
type Command struct {
	Path string
	Args []string
	Env  []string
	// Registries are loopback host:port addresses of this machine that
	// are forwarded into the sandbox's network, at the same address.
	Registries []string
	Output     io.Writer // stdout and stderr
}

// script runs as PID 1 of the new namespaces (root of the user
// namespace): loopback up, the root made a mount of its own, a minimal
// /dev and a fresh /proc on it; it tells the engine it is ready (fd 3) and
// waits for the registries to be forwarded into its network (fd 4). Then
// it makes the root the mount namespace's root (pivot_root), the machine's
// put under the sandbox's /dev (which no image snapshot keeps) and
// detached there by the machine's static busybox, so nothing above the
// root is left to climb back to — a chroot would leave it there, a double
// chroot away — and becomes the command.
const script = `set -e
root=$1; shift
command_path=$PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin
[ -x /bin/busybox ] || { echo "sandbox: /bin/busybox (static) is needed to detach the machine's root" >&2; exit 1; }
ip link set lo up
mount --make-rprivate /
mount --bind "$root" "$root"
for d in null zero full random urandom tty; do : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mount -t proc proc "$root/proc"
mkdir "$root/dev/.host"
echo ready >&3
read -r go <&4
exec 3>&- 4<&-
cd "$root"
pivot_root . dev/.host
cd /
exec /dev/.host/bin/busybox sh -c 'umount -l /dev/.host && PATH=$0 exec "$@"' "$command_path" "$@"
`

// Run runs c in the sandbox and returns how it ended: nil, an
// *exec.ExitError with the command's exit status, or an error making the
// sandbox.
func (r *Root) Run(ctx context.Context, c Command) error {
	if err := r.freshMountPoints(); err != nil {
		return fmt.Errorf("preparing the sandbox's /dev and /proc: %w", err)
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
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "sandbox", r.Dir, c.Path}, c.Args...)...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = c.Output, c.Output
	cmd.ExtraFiles = []*os.File{readyW, goR} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: r.idBase, Size: IDs}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: r.idBase, Size: IDs}},
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
	fwd, err := forward(ctx, cmd.Process.Pid, c.Registries)
	if err != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return err
	}
	defer fwd.Close()
	if _, err := io.WriteString(goW, "go\n"); err != nil {
		return fmt.Errorf("starting the command: %w: %w", err, <-waited)
	}
	goW.Close()
	return <-waited
}
