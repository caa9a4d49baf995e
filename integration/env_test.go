package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayci/slipway/stages/tools"
)

// need fails the test when CI=true and skips it otherwise, when what it
// needs is missing: a green CI run must not have skipped the real work.
func need(t *testing.T, ok bool, what string) {
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
func needBuildTools(t *testing.T) {
	t.Helper()
	need(t, os.Geteuid() == 0, "root (the Kaniko sandbox uses unshare, mount and chroot)")
	need(t, tools.Check(tools.Kaniko()) == nil, "the Kaniko executor (make tools)")
	need(t, tools.Check(tools.Trivy()) == nil, "the Trivy CLI (make tools)")
	_, err := exec.LookPath("docker-registry")
	need(t, err == nil, "docker-registry (make tools)")
	_, err = os.Stat("/bin/busybox")
	need(t, err == nil, "busybox-static (make tools)")
}

// goBinary builds a static Go program from main.go and go.mod contents.
func goBinary(t *testing.T, gomod, main string) []byte {
	t.Helper()
	src := t.TempDir()
	writeFile(t, src, "go.mod", gomod)
	writeFile(t, src, "main.go", main)
	out := filepath.Join(src, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a test binary: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The programs the test images carry: one linking golang.org/x/text v0.3.6
// (CVE-2021-38561), one linking nothing but the standard library.
const (
	cleanMod  = "module example.com/app\n\ngo 1.21\n"
	cleanMain = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"clean\") }\n"
	vulnMod   = "module example.com/app\n\ngo 1.21\n\nrequire golang.org/x/text v0.3.6\n"
	vulnMain  = "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() { fmt.Println(language.English) }\n"
)
