package scan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/slipwayci/slipway/stages/toollog"
)

// Trivy runs the Trivy CLI as a process: with its own database, or as the
// client of a Trivy server that holds the database (Server), so that no
// engine replica keeps one.
type Trivy struct {
	Path     string // the trivy executable
	CacheDir string // its cache (without a Server, the vulnerability database lives in CacheDir/db)
	// Offline scans with the database already in CacheDir and never
	// downloads one (air-gapped machines, tests, the demo).
	Offline bool
	// Server is the URL of a `trivy server` (http://trivy.slipway:4954):
	// this process reads the image's layers and the server matches what
	// they hold against its database. Token is the server's --token.
	Server, Token string
}

// Target is what to scan and how to reach it.
type Target struct {
	Image         string // repository@sha256:…
	Insecure      bool   // plain-HTTP or self-signed registry
	Username      string
	Password      string
	IgnoreUnfixed bool
	IgnoreFile    string // absolute path, or ""
}

// Report returns Trivy's JSON report (schema 2) of the target.
func (t *Trivy) Report(ctx context.Context, target Target, log io.Writer) ([]byte, error) {
	return t.run(ctx, target, log, "--format", "json")
}

// SBOM returns a CycloneDX SBOM of the target.
func (t *Trivy) SBOM(ctx context.Context, target Target, log io.Writer) ([]byte, error) {
	return t.run(ctx, target, log, "--format", "cyclonedx")
}

func (t *Trivy) run(ctx context.Context, target Target, log io.Writer, format ...string) ([]byte, error) {
	if _, err := os.Stat(t.Path); err != nil {
		return nil, fmt.Errorf("trivy: %w (run `make tools`)", err)
	}
	args := append([]string{"image", "--quiet", "--cache-dir", t.CacheDir, "--scanners", "vuln"}, format...)
	switch {
	case t.Server != "":
		fmt.Fprintf(log, "slipway: asking the Trivy server at %s\n", t.Server)
		args = append(args, "--server", t.Server)
	case t.Offline:
		args = append(args, "--skip-db-update", "--skip-java-db-update", "--offline-scan")
	}
	if target.Insecure {
		args = append(args, "--insecure")
	}
	if target.IgnoreUnfixed {
		args = append(args, "--ignore-unfixed")
	}
	if target.IgnoreFile != "" {
		args = append(args, "--ignorefile", target.IgnoreFile)
	}
	args = append(args, "--", target.Image)
	// A HOME of its own, 0700 and removed after: in a shared /tmp another
	// user could plant a config or a docker credential file for Trivy to read.
	home, err := os.MkdirTemp("", "slipway-trivy-home-")
	if err != nil {
		return nil, fmt.Errorf("making Trivy's home: %w", err)
	}
	defer os.RemoveAll(home)
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "TRIVY_NO_PROGRESS=true"}
	if t.Token != "" {
		cmd.Env = append(cmd.Env, "TRIVY_TOKEN="+t.Token) // not an argument: ps shows those
	}
	if target.Username != "" {
		cmd.Env = append(cmd.Env, "TRIVY_USERNAME="+target.Username, "TRIVY_PASSWORD="+target.Password)
	}
	var stdout, stderr bytes.Buffer
	logs := toollog.NewWriter(log, "trivy") // Trivy's zap lines read like the run log's
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(&stderr, logs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("trivy interrupted: %w", ctx.Err())
		}
		return nil, t.failure(err, lastLine(stderr.String()))
	}
	if stdout.Len() == 0 {
		return nil, fmt.Errorf("trivy wrote no report: %s", lastLine(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// failure says why Trivy failed, naming the server when it is what
// refused or could not be reached.
func (t *Trivy) failure(err error, last string) error {
	if t.Server != "" {
		switch {
		case strings.Contains(last, "unauthenticated"):
			return fmt.Errorf("the Trivy server at %s refused this engine's token (trivy.token): %s", t.Server, last)
		case strings.Contains(last, "connection refused"), strings.Contains(last, "no such host"), strings.Contains(last, "i/o timeout"):
			return fmt.Errorf("the Trivy server at %s cannot be reached (trivy.server): %s", t.Server, last)
		}
	}
	return fmt.Errorf("trivy failed (%v): %s", err, last)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 0 || lines[len(lines)-1] == "" {
		return "no output"
	}
	return toollog.Rewrite("trivy", lines[len(lines)-1])
}
