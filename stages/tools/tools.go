// Package tools finds the pinned external executables the stage kinds run
// (the Kaniko executor, the Trivy CLI) in the per-machine tools cache that
// `make tools` fills: $SLIPWAY_TOOLS_DIR/<name>-<version>/<binary>, by
// default under ~/.cache/slipway/tools.
package tools

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed versions.env
var versionsEnv string

// Version returns the pinned version of a tool (KANIKO, TRIVY).
func Version(name string) string {
	for _, line := range strings.Split(versionsEnv, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k == name+"_VERSION" {
			return v
		}
	}
	panic("tools: no pinned version for " + name)
}

// Dir is the tools cache directory.
func Dir() string {
	if d := os.Getenv("SLIPWAY_TOOLS_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "slipway", "tools")
}

// Kaniko is the path of the pinned Kaniko executor.
func Kaniko() string {
	return filepath.Join(Dir(), "kaniko-"+Version("KANIKO"), "executor")
}

// Trivy is the path of the pinned Trivy CLI: SLIPWAY_TRIVY when set (an
// image puts it on its own path), else the tools cache's.
func Trivy() string {
	if p := os.Getenv("SLIPWAY_TRIVY"); p != "" {
		return p
	}
	return filepath.Join(Dir(), "trivy-"+Version("TRIVY"), "trivy")
}

// Check reports a missing or non-executable tool with a sentence that says
// how to get it.
func Check(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s is not installed: run `make tools`", path)
	}
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
