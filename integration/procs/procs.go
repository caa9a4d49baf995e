// Package procs starts and supervises the helper processes of the local
// environment (registry, etcd, kube-apiserver, Argo CD, Prometheus…): each
// logs to a file of its own, readiness is polled (bounded), never slept
// on, and Stop leaves no process behind — its whole process group goes.
package procs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one supervised process.
type Proc struct {
	Name string
	Log  string // path of its combined output
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args (and env added to a minimal environment) in a
// process group of its own, logging to logPath.
func Start(name, logPath, bin string, args, env []string) (*Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID (also its process group ID).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process.
func (p *Proc) Stop(grace time.Duration) {
	if done, _ := p.Exited(); done {
		return
	}
	syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
	syscall.Kill(-p.Pid(), syscall.SIGKILL) // anything the leader left in its group
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// WaitReady polls ready every 50 ms until it reports true, the process
// exits, ctx ends or timeout passes; the error carries the log's tail.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration, what string, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v) before %s:\n%s", p.Name, err, what, p.Tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not reached within %s:\n%s", p.Name, what, timeout, p.Tail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitUntil polls cond every 50 ms until it reports true, ctx ends or
// timeout passes; the error names what was awaited.
func WaitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// FreePorts reserves n ports (FreePort).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	return ports, nil
}

// FreePort reserves a TCP port on 127.0.0.1 for a helper process that
// takes its port on the command line, for the life of this process. A
// port picked by listening on :0 and closing is an ephemeral one that any
// outgoing connection may take before the helper binds it; these come
// from below the kernel's ephemeral range instead, so only reservations
// can compete for them — and a reservation is an exclusive lock on a
// file, which other test processes of this machine honour too.
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	dir := filepath.Join(os.TempDir(), "slipway-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("reserving a port: %w", err)
	}
	os.Chmod(dir, 0o777|os.ModeSticky) // shared by every user's tests, like /tmp (best effort: another user may own it)
	low, high := reservedRange()
	span := high - low + 1
	start := low + int(time.Now().UnixNano()%int64(span))
	for i := range span {
		port := low + (start-low+i)%span
		if reserved[port] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDONLY, 0o644) // flock needs no write access
		if err != nil {
			return 0, fmt.Errorf("reserving a port: %w", err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another process holds it
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			f.Close() // in use by something that is not ours
			continue
		}
		ln.Close()
		reserved[port] = true
		locks = append(locks, f) // held until this process ends
		return port, nil
	}
	return 0, fmt.Errorf("reserving a port: every port of %d-%d is taken", low, high)
}

// nodePortsFrom is where Kubernetes' NodePort range begins.
const nodePortsFrom = 30000

var (
	portsMu  sync.Mutex
	reserved = map[int]bool{}
	locks    []*os.File
)

// reservedRange is the ports FreePort hands out: the 8192 below the
// kernel's ephemeral range (outgoing connections never take them) and
// below Kubernetes' NodePort range, 30000–32767 (kube-proxy's NodePorts,
// and the ports of the node any Pod may reach past its NetworkPolicies,
// as the node's agent allows them).
func reservedRange() (low, high int) {
	ephemeral := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 9000 {
				ephemeral = n
			}
		}
	}
	high = min(ephemeral, nodePortsFrom) - 1
	return max(high-8191, 1024), high
}

// Alive lists the processes (pid and command line) whose command line
// contains marker — for tests that check teardown left nothing behind.
func Alive(marker string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")
		if strings.Contains(cmdline, marker) {
			out = append(out, e.Name()+" "+cmdline)
		}
	}
	return out
}

// Running reports whether the process (or any process with its pid) still exists.
func (p *Proc) Running() bool {
	if done, _ := p.Exited(); done {
		return syscall.Kill(p.Pid(), 0) == nil
	}
	return true
}

// Answers200 is a readiness check for WaitReady: url answers 200 OK.
func Answers200(url string) func() bool {
	return func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}
