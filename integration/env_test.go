package integration

import (
	"os"
	"os/exec"
	"testing"

	"github.com/slipwayci/slipway/stages/tools"
)

// need fails the test when CI=true and skips it otherwise, when what it
// needs is missing: a green CI run must not have skipped the real work.
func need(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s is missing", what)
	}
	t.Skipf("%s is missing", what)
}

// needBuildTools requires root (for the build sandbox), the pinned Kaniko
// and Trivy, and Debian's docker-registry and busybox-static.
func needBuildTools(t testing.TB) {
	t.Helper()
	need(t, os.Geteuid() == 0, "root (the Kaniko sandbox uses unshare, mount and chroot)")
	need(t, tools.Check(tools.Kaniko()) == nil, "the Kaniko executor (make tools)")
	need(t, tools.Check(tools.Trivy()) == nil, "the Trivy CLI (make tools)")
	_, err := exec.LookPath("docker-registry")
	need(t, err == nil, "docker-registry (make tools)")
	_, err = os.Stat("/bin/busybox")
	need(t, err == nil, "busybox-static (make tools)")
}
