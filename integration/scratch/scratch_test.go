package scratch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"os/exec"

	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/trivydb"
	"github.com/slipwayci/slipway/stages/build"
	"github.com/slipwayci/slipway/stages/tools"
)

func TestScratch(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	if _, err := registry.PushBusybox(reg.Addr + "/base:busybox"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+reg.Addr+"/base:busybox\nRUN echo built > /hello.txt\nCOPY app.txt /app.txt\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("app\n"), 0o644)
	var log bytes.Buffer
	b := &build.Local{Executor: tools.Kaniko()}
	t0 := time.Now()
	res, err := b.Build(ctx, build.Request{ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile"), Destination: reg.Addr + "/app:v1", Insecure: []string{reg.Addr}}, &log)
	t.Logf("took %s\n%s", time.Since(t0), log.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Digest)
}

func TestScratchTrivy(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	registry.PushBusybox(reg.Addr + "/base:busybox")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module vulnapp\n\ngo 1.21\n\nrequire golang.org/x/text v0.3.6\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport (\"fmt\"; \"golang.org/x/text/language\")\n\nfunc main() { fmt.Println(language.English) }\n"), 0o644)
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "app"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+reg.Addr+"/base:busybox\nCOPY app /app\n"), 0o644)
	var log bytes.Buffer
	res, err := (&build.Local{Executor: tools.Kaniko()}).Build(ctx, build.Request{ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile"), Destination: reg.Addr + "/vuln:v1", Insecure: []string{reg.Addr}}, &log)
	if err != nil {
		t.Fatal(err, log.String())
	}
	cache := t.TempDir()
	if err := trivydb.Write(cache, trivydb.Fixture); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	out, err := exec.Command(tools.Trivy(), "image", "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update", "--offline-scan", "--insecure", "--format", "json", "--quiet", reg.Addr+"/vuln@"+res.Digest).CombinedOutput()
	t.Logf("trivy took %s err %v\n%s", time.Since(t0), err, out)
}
