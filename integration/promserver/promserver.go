// Package promserver runs Debian's Prometheus on loopback for tests and
// the demo, scraping the given targets every second, with its data in a
// temporary directory and optional alerting rules.
package promserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayci/slipway/integration/procs"
)

// Server is a running Prometheus.
type Server struct {
	URL     string // http://127.0.0.1:PORT
	proc    *procs.Proc
	dir     string
	targets []string
}

// Start runs Prometheus under dir, scraping targets (host:port, path
// /metrics) as job "mesh" every second. rules, when not empty, is a rule
// file's content.
func Start(ctx context.Context, dir string, targets []string, rules string) (*Server, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w (make tools installs Debian's prometheus)", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	if err := writeConfig(dir, targets, rules, ""); err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := procs.Start("prometheus", filepath.Join(dir, "prometheus.log"), bin, []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--web.enable-lifecycle", "--rules.alert.resend-delay=1s", "--log.level=warn"}, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: url, proc: p, dir: dir, targets: targets}
	// Ready means every target has been scraped once: Prometheus applies
	// its first targets only after a few seconds, and load sent before
	// that would never be seen as a rate.
	err = p.WaitReady(ctx, 60*time.Second, "scraping every target", func() bool {
		resp, err := http.Get(url + "/api/v1/query?query=" + neturl.QueryEscape(fmt.Sprintf(`count(up{job="mesh"} == 1) == %d`, len(targets))))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []any `json:"result"`
			} `json:"data"`
		}
		return json.NewDecoder(resp.Body).Decode(&r) == nil && len(r.Data.Result) == 1
	})
	if err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// writeConfig writes prometheus.yml (and rules.yml) into dir.
func writeConfig(dir string, targets []string, rules, alertmanager string) error {
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mesh\n    static_configs:\n      - targets: [%s]\n",
		quoteAll(targets))
	if rules != "" {
		if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o644); err != nil {
			return err
		}
		config += "rule_files: [rules.yml]\n"
	}
	if alertmanager != "" {
		config += fmt.Sprintf("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", alertmanager)
	}
	return os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644)
}

// Reconfigure replaces the alerting rules and the Alertmanager
// (host:port; "" for none) and has Prometheus reload its configuration.
func (s *Server) Reconfigure(ctx context.Context, rules, alertmanager string) error {
	if err := writeConfig(s.dir, s.targets, rules, alertmanager); err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/-/reload", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reloading Prometheus: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reloading Prometheus: %s (see %s)", resp.Status, s.proc.Log)
	}
	return nil
}

// Stop ends Prometheus.
func (s *Server) Stop() { s.proc.Stop(10 * time.Second) }

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// Procs is Prometheus's process, for teardown checks.
func (s *Server) Procs() []*procs.Proc { return []*procs.Proc{s.proc} }
