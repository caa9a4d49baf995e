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
	"strings"
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

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
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
