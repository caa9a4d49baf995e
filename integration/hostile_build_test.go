package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A Dockerfile is other people's code: what its RUN steps try against the
// machine the engine runs on fails, the build's log says so, and the
// build itself still succeeds and pushes.
func TestHostileDockerfileCannotTouchTheHost(t *testing.T) {
	offNode(t)
	e := newBuildEnv(t)
	marker := fmt.Sprintf("slipway-hostile-%d", os.Getpid())
	escape := filepath.Join(os.TempDir(), marker+"-escaped")
	// A stand-in for the engine's API (and etcd, Argo CD …) on loopback.
	api, reached := countConnections(t)
	apiPort := api.Port
	hostile := fmt.Sprintf(`FROM %s
RUN if grep -l %[2]s /proc/*/environ 2>/dev/null; then echo "LEAKED: the engine's environment"; else echo "REFUSED: no process here holds the engine's environment"; fi
RUN if busybox mknod /tmp/vda b 254 0 2>/dev/null || busybox mount /dev/vda /tmp 2>/dev/null; then echo "LEAKED: mounted the host disk"; else echo "REFUSED: no block device, no mount"; fi
RUN if busybox kill -9 %[3]d 2>/dev/null; then echo "LEAKED: killed a host process"; else echo "REFUSED: host processes are out of reach"; fi
RUN if echo x | busybox nc 127.0.0.1 %[4]d 2>/dev/null; then echo "LEAKED: reached the engine API"; else echo "REFUSED: the engine's loopback services are out of reach"; fi
RUN echo pwned > /proc/1/root/../../../..%[5]s 2>/dev/null; echo pwned > /..%[5]s 2>/dev/null; echo "wrote where it could"
RUN echo "devices: $(echo $(ls /dev)) end"
`, e.Base, marker, os.Getpid(), apiPort, escape)
	sha := e.commit(t, "hostile", []byte("x"), map[string]string{"svc/Dockerfile": hostile})
	pipeline := e.pipeline(t, "go-git", fmt.Sprintf("context: svc, image: %s/shop/hostile, insecure: true", e.reg.Addr))
	cmd := exec.Command(slipwayBin, "run", pipeline, "--data", filepath.Join(e.dir, "data"), "--sha", sha)
	cmd.Env = append(os.Environ(), append(e.TrivyEnv(), "SLIPWAY_HOSTILE_MARKER="+marker)...)
	outb, _ := cmd.CombinedOutput()
	out := string(outb)
	if cmd.ProcessState.ExitCode() != 0 || !strings.Contains(out, "build") {
		t.Fatalf("the hostile build did not complete (exit %d):\n%s", cmd.ProcessState.ExitCode(), out)
	}
	// Kaniko logs each command before running it: what a step printed is
	// the text right after the log's stage prefix.
	if strings.Contains(out, "│ LEAKED") {
		t.Errorf("the sandbox leaked:\n%s", out)
	}
	for _, want := range []string{"REFUSED: no process here", "REFUSED: no block device", "REFUSED: host processes", "REFUSED: the engine's loopback"} {
		if !strings.Contains(out, "│ "+want) {
			t.Errorf("the build log lacks %q:\n%s", want, out)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the engine API stand-in was reached %d times from the build", n)
	}
	if _, err := os.Stat(escape); err == nil {
		os.Remove(escape)
		t.Errorf("the build wrote %s on the host", escape)
	}
	for _, dev := range []string{"vda", "sda", "mem", "kmsg"} {
		if strings.Contains(out, " "+dev+" ") || !strings.Contains(out, "devices: ") {
			t.Errorf("the sandbox's /dev shows %s:\n%s", dev, out)
		}
	}
}

// A build's RUN step can replace the file the engine reads the digest
// from by a link to a path of the engine's machine: inside the sandbox
// Kaniko writes its digest through the link (to the sandbox's own /tmp),
// and an engine that followed it from outside would read — and echo in
// the stage's error, the run, the UI and the forge's commit status — a
// file of this machine. The engine reads only a small regular file
// beneath the sandbox, and says nothing of what the link pointed to.
func TestALinkedDigestFileIsNotRead(t *testing.T) {
	offNode(t)
	e := newBuildEnv(t)
	marker := fmt.Sprintf("engine-token-%d-%d", os.Getpid(), time.Now().UnixNano())
	hostFile := filepath.Join("/tmp", fmt.Sprintf("slipway-digest-%d", os.Getpid())) // directly under /tmp: the sandbox has a /tmp of its own
	must(t, os.WriteFile(hostFile, []byte("ADMIN_TOKEN="+marker+"\n"), 0o600))
	t.Cleanup(func() { os.Remove(hostFile) })
	hostile := fmt.Sprintf(`FROM %s
RUN ln -sf %s /kaniko/digest && ls -l /kaniko/digest
`, e.Base, hostFile)
	sha := e.commit(t, "linked digest", []byte("x"), map[string]string{"svc/Dockerfile": hostile})
	pipeline := e.pipeline(t, "go-git", fmt.Sprintf("context: svc, image: %s/shop/linked, insecure: true", e.reg.Addr))
	out, code := e.slipwayRun(t, pipeline, sha)
	if strings.Contains(out, marker) {
		t.Fatalf("a file of the engine's machine reached the run's output:\n%s", out)
	}
	if code == 0 {
		t.Fatalf("a build whose digest file is a link succeeded:\n%s", out)
	}
	if !strings.Contains(out, "-> "+hostFile) {
		t.Errorf("the RUN step did not make its link (the test proves nothing):\n%s", out)
	}
	if !strings.Contains(out, "reading the digest kaniko wrote: kaniko/digest is not a regular file (a symbolic link)") {
		t.Errorf("the failure does not say what was wrong with the digest file:\n%s", out)
	}
}

// countConnections is a loopback listener that counts the connections
// made to it (and closes them), until the test ends: a stand-in for a
// host nothing may reach.
func countConnections(t *testing.T) (*net.TCPAddr, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	var reached atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr), &reached
}
