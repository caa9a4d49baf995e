package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// slipwayBin is the slipway binary built once for all tests here, in
// binDir.
var slipwayBin, binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here starts real processes (and most need root and
		// make tools): none is short.
		fmt.Println("integration: skipped with -short (end-to-end tests with real processes)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "slipway-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	slipwayBin = filepath.Join(dir, "slipway")
	// With the fake stage kind, which the shipped binary leaves out, and
	// with the race detector when this test has it (make test).
	args := []string{"build", "-tags", "slipway_fake", "-o", slipwayBin}
	if raceEnabled {
		args = append(args, "-race")
		// A race in an engine process ends it at once, loudly, so the test
		// that started it fails (children inherit this environment).
		os.Setenv("GORACE", "halt_on_error=1")
	}
	build := exec.Command("go", append(args, "github.com/slipwayci/slipway/cmd/slipway")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building slipway:", err)
		os.Exit(1)
	}
	// The lanes (lanes_test.go) limit how many tests run at once; go
	// test's own limit (GOMAXPROCS) would count the tests waiting for a
	// lane and leave a lane idle.
	flag.Set("test.parallel", "100")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
