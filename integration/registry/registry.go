// Package registry runs a real container registry — Debian's
// docker-registry (distribution 2.8) — on a free loopback port with its
// storage in a temporary directory, for tests and the demo; and pushes the
// small base images the test Dockerfiles build FROM.
package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/slipwayci/slipway/integration/procs"
)

// Registry is a running docker-registry.
type Registry struct {
	Addr string // 127.0.0.1:PORT
	proc *procs.Proc
}

// Start runs docker-registry with storage under dir until Stop.
func Start(ctx context.Context, dir string) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("registry: %w (make tools installs Debian's docker-registry)", err)
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
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
	p, err := procs.Start("docker-registry", filepath.Join(dir, "registry.log"), bin, []string{"serve", config}, nil)
	if err != nil {
		return nil, err
	}
	r := &Registry{Addr: addr, proc: p}
	err = p.WaitReady(ctx, 15*time.Second, "answering /v2/", procs.Answers200("http://"+addr+"/v2/"))
	if err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// Stop ends the registry and waits for it.
func (r *Registry) Stop() { r.proc.Stop(5 * time.Second) }

// Procs is the registry's process, for teardown checks.
func (r *Registry) Procs() []*procs.Proc { return []*procs.Proc{r.proc} }
