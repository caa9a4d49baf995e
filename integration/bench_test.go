package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/trivydb"
	"github.com/slipwayci/slipway/stages/kinds/build"
	"github.com/slipwayci/slipway/stages/kinds/scan"
	"github.com/slipwayci/slipway/stages/tools"
)

// Benchmarks of the first half of a release against the real systems.
// They report numbers (bench/run.sh collects them); nothing is asserted
// about speed.

// bigRepo serves a generated repository: files × commits, each commit
// rewriting a few dozen files, written with git fast-import.
func bigRepo(b *testing.B, files, commits int) string {
	b.Helper()
	srv, err := gitserver.Start(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	url, err := srv.CreateRepo("big")
	if err != nil {
		b.Fatal(err)
	}
	var stream bytes.Buffer
	rng := rand.New(rand.NewSource(1))
	blob := func() string {
		var s strings.Builder
		for range 64 {
			fmt.Fprintf(&s, "line %d %x\n", rng.Int63(), rng.Int63())
		}
		return s.String()
	}
	for c := 0; c < commits; c++ {
		fmt.Fprintf(&stream, "commit refs/heads/main\ncommitter Bench <b@x> %d +0000\ndata 8\ncommit %d\n", 1700000000+c, c%10)
		n := 40
		if c == 0 {
			n = files
		}
		for i := 0; i < n; i++ {
			f := i
			if c > 0 {
				f = rng.Intn(files)
			}
			data := blob()
			fmt.Fprintf(&stream, "M 644 inline src/pkg%d/file%d.txt\ndata %d\n%s\n", f%50, f, len(data), data)
		}
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir = filepath.Join(srv.Root, "big.git")
	cmd.Stdin = &stream
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("fast-import: %v %s", err, out)
	}
	return url
}

// clonePeak builds bench/clonepeak, which clones in a process of its own
// and reports its peak memory.
func clonePeak(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "clonepeak")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/slipwayci/slipway/bench/clonepeak").CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	return bin
}

// peakRSS runs clonepeak and returns the peak resident memory (KiB) of the
// process itself and of its largest child.
func peakRSS(b *testing.B, bin, engine, url, dir string, depth int) (self, kids int) {
	out, err := exec.Command(bin, engine, url, dir, strconv.Itoa(depth)).CombinedOutput()
	if err != nil {
		b.Fatalf("%v %s", err, out)
	}
	fmt.Sscanf(strings.TrimSpace(string(out)), "%d %d", &self, &kids)
	return self, kids
}

// BenchmarkClone compares go-git and the git CLI on the same repository
// (3000 files, 150 commits): time per clone, and peak resident memory —
// go-git's as the cloning process's, the CLI's as its largest git process.
// (idle-MiB is the same process cloning nothing.)
func BenchmarkClone(b *testing.B) {
	url := bigRepo(b, 3000, 150)
	bin := clonePeak(b)
	idle, _ := peakRSS(b, bin, "none", url, b.TempDir(), 1)
	for _, engine := range []string{"go-git", "git"} {
		for _, depth := range []int{1, 0} {
			b.Run(fmt.Sprintf("%s/depth=%d", engine, depth), func(b *testing.B) {
				var peak int
				for i := 0; b.Loop(); i++ {
					self, kids := peakRSS(b, bin, engine, url, filepath.Join(b.TempDir(), strconv.Itoa(i)), depth)
					if engine == "git" {
						self = kids
					}
					peak = max(peak, self)
				}
				b.ReportMetric(float64(peak)/1024, "peak-MiB")
				b.ReportMetric(float64(idle)/1024, "idle-MiB")
			})
		}
	}
}

// BenchmarkCloneStage compares what the clone stage does by default
// (engine auto) with plain `git clone` on a generated large repository
// (14,000 files, 300 commits) at depth 1 and for the whole history: time
// per clone, and the peak resident memory of the largest process (the
// cloning process for go-git, its git child for the CLI).
func BenchmarkCloneStage(b *testing.B) {
	url := bigRepo(b, 14000, 300)
	bin := clonePeak(b)
	for _, engine := range []string{"auto", "plain-git"} {
		for _, depth := range []int{1, 0} {
			b.Run(fmt.Sprintf("%s/depth=%d", engine, depth), func(b *testing.B) {
				var peak int
				for i := 0; b.Loop(); i++ {
					self, kids := peakRSS(b, bin, engine, url, filepath.Join(b.TempDir(), strconv.Itoa(i)), depth)
					peak = max(peak, self, kids)
				}
				b.ReportMetric(float64(peak)/1024, "peak-MiB")
			})
		}
	}
}

// buildBench is a registry with a base image and a small build context.
func buildBench(b *testing.B) (*registry.Registry, string) {
	b.Helper()
	if os.Geteuid() != 0 || tools.Check(tools.Kaniko()) != nil {
		b.Skip("needs root and the Kaniko executor (make tools)")
	}
	reg, err := registry.Start(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(reg.Stop)
	if _, err := registry.PushBusybox(reg.Addr + "/base:1"); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+reg.Addr+"/base:1\nRUN echo hello > /hello\nCOPY app.txt /app.txt\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("app\n"), 0o644)
	return reg, dir
}

// BenchmarkSandbox measures what the sandbox costs: the executor run bare
// (`executor version`, which touches no files) against the same command
// inside a fresh sandbox (root dir, namespaces, mounts, chroot, removal).
func BenchmarkSandbox(b *testing.B) {
	if os.Geteuid() != 0 || tools.Check(tools.Kaniko()) != nil {
		b.Skip("needs root and the Kaniko executor (make tools)")
	}
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			if out, err := exec.Command(tools.Kaniko(), "version").CombinedOutput(); err != nil {
				b.Fatalf("%v %s", err, out)
			}
		}
	})
	b.Run("sandboxed", func(b *testing.B) {
		for b.Loop() {
			if err := build.SandboxVersion(context.Background(), &build.Local{Executor: tools.Kaniko()}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBuild is one Kaniko build in the sandbox, with the layer cache
// cold (a new cache repository each time) and warm.
func BenchmarkBuild(b *testing.B) {
	reg, dir := buildBench(b)
	l := &build.Local{Executor: tools.Kaniko()}
	for _, warm := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache-warm=%v", warm), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				cache := fmt.Sprintf("%s/cache/cold%d-%d", reg.Addr, i, time.Now().UnixNano())
				if warm {
					cache = reg.Addr + "/cache/warm"
				}
				var log bytes.Buffer
				_, err := l.Build(context.Background(), build.Request{ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile"),
					Destination: reg.Addr + "/app:1", Cache: true, CacheRepo: cache, Insecure: []string{reg.Addr}}, &log)
				if err != nil {
					b.Fatalf("%v\n%s", err, log.String())
				}
			}
		})
	}
}

// BenchmarkScan is one Trivy scan (offline database) of a built image
// holding a Go binary.
func BenchmarkScan(b *testing.B) {
	reg, dir := buildBench(b)
	if tools.Check(tools.Trivy()) != nil {
		b.Skip("needs Trivy (make tools)")
	}
	app := appBinary(b, true)
	os.WriteFile(filepath.Join(dir, "app"), app, 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+reg.Addr+"/base:1\nCOPY app /app\nRUN chmod 755 /app\n"), 0o644)
	res, err := (&build.Local{Executor: tools.Kaniko()}).Build(context.Background(), build.Request{ContextDir: dir,
		Dockerfile: filepath.Join(dir, "Dockerfile"), Destination: reg.Addr + "/vuln:1", Insecure: []string{reg.Addr}}, &bytes.Buffer{})
	if err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	if err := trivydb.Write(cache, trivydb.Fixture); err != nil {
		b.Fatal(err)
	}
	tv := &scan.Trivy{Path: tools.Trivy(), CacheDir: cache, Offline: true}
	for b.Loop() {
		if _, err := tv.Report(context.Background(), scan.Target{Image: reg.Addr + "/vuln@" + res.Digest, Insecure: true}, &bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
}
