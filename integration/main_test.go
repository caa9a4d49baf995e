package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// slipwayBin is the slipway binary built once for all tests here.
var slipwayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slipwayBin = filepath.Join(dir, "slipway")
	// With the fake stage kind, which the shipped binary leaves out.
	build := exec.Command("go", "build", "-tags", "slipway_fake", "-o", slipwayBin, "github.com/slipwayci/slipway/cmd/slipway")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building slipway:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
