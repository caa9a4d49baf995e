// Package alertmanager runs Debian's Alertmanager on loopback for tests
// and the demo: one route that sends every alert, at once, to one webhook
// receiver with a bearer token — the way an operator points Alertmanager
// at Slipway's /hooks/alertmanager.
package alertmanager

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/slipwayci/slipway/integration/procs"
)

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	Addr string // 127.0.0.1:PORT, for Prometheus's alerting config
	proc *procs.Proc
}

// Start runs Alertmanager under dir, sending alerts to webhook with
// Authorization: Bearer token.
func Start(ctx context.Context, dir, webhook, token string) (*Alertmanager, error) {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w (make tools installs Debian's prometheus-alertmanager)", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	config := fmt.Sprintf(`route:
  receiver: slipway
  group_by: [alertname, app]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: slipway
    webhook_configs:
      - url: %q
        send_resolved: false
        http_config:
          authorization: {type: Bearer, credentials: %q}
`, webhook, token)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := procs.Start("alertmanager", filepath.Join(dir, "alertmanager.log"), bin, []string{
		"--config.file=" + filepath.Join(dir, "alertmanager.yml"), "--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}, nil)
	if err != nil {
		return nil, err
	}
	a := &Alertmanager{Addr: addr, proc: p}
	err = p.WaitReady(ctx, 30*time.Second, "answering /-/ready", procs.Answers200("http://"+addr+"/-/ready"))
	if err != nil {
		a.Stop()
		return nil, err
	}
	return a, nil
}

// Stop ends Alertmanager.
func (a *Alertmanager) Stop() { a.proc.Stop(10 * time.Second) }

// Procs is Alertmanager's process, for teardown checks.
func (a *Alertmanager) Procs() []*procs.Proc { return []*procs.Proc{a.proc} }
