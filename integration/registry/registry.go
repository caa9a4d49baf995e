// Package registry runs a real container registry — Debian's
// docker-registry (distribution 2.8) — on a free loopback port with its
// storage in a temporary directory, for tests and the demo; and pushes the
// small base images the test Dockerfiles build FROM.
package registry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Registry is a running docker-registry.
type Registry struct {
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan error
	Log  string // where it logs
}

// Start runs docker-registry with storage under dir until Stop or ctx ends.
func Start(ctx context.Context, dir string) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("registry: %w (make tools installs Debian's docker-registry)", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config.yml")
	body := fmt.Sprintf(`version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http:
  addr: %s
  headers: {X-Content-Type-Options: [nosniff]}
`, filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("registry: starting docker-registry: %w", err)
	}
	r := &Registry{Addr: addr, cmd: cmd, done: make(chan error, 1), Log: logPath}
	go func() { r.done <- cmd.Wait(); logf.Close() }()
	if err := r.waitReady(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// waitReady polls /v2/ (bounded) until the registry answers.
func (r *Registry) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-r.done:
			b, _ := os.ReadFile(r.Log)
			return fmt.Errorf("registry exited early (%v): %s", err, b)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.Addr+"/v2/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("registry on %s did not become ready", r.Addr)
}

// Stop ends the registry and waits for it.
func (r *Registry) Stop() {
	if r.cmd.Process != nil {
		r.cmd.Process.Kill()
	}
	<-r.done
	r.done <- nil // later Stops return at once
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
