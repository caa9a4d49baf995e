// Command slipway-demo tells Slipway's whole story on this machine (what
// make demo runs). It is the test rig's launcher, not the product: it
// starts the local environment of integration/ and drives the slipway
// binary beside it as a user would — slipway serve, signed webhooks,
// slipway logs -f — so nothing of the rig is linked into slipway itself.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/slipwayci/slipway/integration/argocd"
	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitea"
	"github.com/slipwayci/slipway/integration/incluster"
	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/stages/tools"
)

//go:embed demo.yaml
var demoPipeline string

const usage = `slipway-demo releases a demo service on a local cluster: a good change
promoted, a bad one rolled back, a vulnerable one stopped.

It starts everything on loopback — Gitea, a git server, a registry, an offline
Trivy database, a Kubernetes control plane with a real node, the real Argo CD,
a mesh proxy and Prometheus. It builds Slipway's image from the checkout's
Dockerfile with Kaniko (the slipway binary inside), and Argo CD deploys it from
deploy/ into the cluster with its Trivy server; a local port is forwarded to
its Service. Then it git-pushes three changes of a demo service to Gitea,
whose webhook starts each release (and whose commits then show Slipway's
status); the service's tests and its build run as Pods: a good one is
built, scanned, deployed and canaried 10 → 25 → 50 → 100 and promoted; a bad
one (it answers 5xx) is rolled back automatically at its first step; a
vulnerable one is stopped by the scan. It follows each run with "slipway logs
-f", prints the rollback's explanation and where to look, and keeps everything
running until Ctrl-C (DEMO_EXIT=1: exit at once). Needs root and make tools.

Usage: slipway-demo [flags]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(execute(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the demo with args and returns the exit status: 0 when
// every release ended as the demo expects, 1 when one did not or the
// machine lacks something, 2 for bad flags.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("slipway-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	data := fs.String("data", "", "data directory (default: a fresh temporary one)")
	listen := fs.String("listen", "127.0.0.1:8080", "the local port forwarded to Slipway's Service (127.0.0.1:0: a port of the system's choosing)")
	bin := fs.String("slipway", "", "the static slipway binary for the image and the CLI (default: the one beside this program, else slipway on PATH)")
	source := fs.String("source", ".", "the Slipway checkout whose Dockerfile and deploy/ the demo deploys")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "slipway-demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := demo(ctx, *data, *listen, *bin, *source, stdout); err != nil {
		fmt.Fprintln(stderr, "slipway-demo:", err)
		return 1
	}
	return 0
}

// slipwayBinary is the slipway binary the demo runs: path when given,
// else the one beside this program (make demo builds both into bin/),
// else slipway on PATH.
func slipwayBinary(path string) (string, error) {
	if path == "" {
		if self, err := os.Executable(); err == nil {
			if beside := filepath.Join(filepath.Dir(self), "slipway"); isExecutable(beside) {
				return beside, nil
			}
		}
		path = "slipway"
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("finding the slipway binary (make build, or --slipway PATH): %w", err)
	}
	return filepath.Abs(found)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// demoPrerequisites says what the demo lacks, in words.
func demoPrerequisites() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the Kaniko build sandbox uses unshare, mount and chroot; the node runs containers)")
	}
	for _, t := range []string{tools.Kaniko(), tools.Trivy()} {
		if err := tools.Check(t); err != nil {
			missing = append(missing, err.Error())
		}
	}
	missing = append(append(append(append(missing, cluster.Missing()...), kubenode.Missing()...), argocd.Missing()...), gitea.Missing()...)
	for _, bin := range []string{"git", "docker-registry", "go", "prometheus", "redis-server"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin+" (make tools)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the demo needs: %s", strings.Join(missing, "; "))
	}
	return nil
}

// checkSource says, in words, when source is not a Slipway checkout.
func checkSource(source string) error {
	for _, f := range []string{"Dockerfile", "deploy/kustomization.yaml"} {
		if _, err := os.Stat(filepath.Join(source, f)); err != nil {
			return fmt.Errorf("the demo deploys Slipway from its checkout (--source, default the current directory): %w", err)
		}
	}
	return nil
}

// demoChange is one push of the demo.
type demoChange struct {
	title      string
	behaviour  string
	vulnerable bool
	want       string // the run's expected status
}

func demo(ctx context.Context, data, listen, bin, source string, out io.Writer) error {
	if err := checkSource(source); err != nil {
		return err
	}
	if err := demoPrerequisites(); err != nil {
		return err
	}
	bin, err := slipwayBinary(bin)
	if err != nil {
		return err
	}
	if data == "" {
		if data, err = os.MkdirTemp("", "slipway-demo-"); err != nil {
			return err
		}
	}
	out = &lockedWriter{w: out} // the notification receiver prints from its own goroutine
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	say("Slipway demo — data in %s", data)
	say("starting the local environment: git, registry, Trivy DB, Kubernetes, Argo CD, mesh, Prometheus (about a minute)…")
	d, err := startDemoEnv(ctx, data, listen, bin, source, out)
	if err != nil {
		return err
	}
	defer d.close()
	say("Slipway answers in the cluster at %s, forwarded from %s; traffic flows through the mesh at 20 requests/s", d.slipway.URL, d.url)
	say("watch it in a browser: %s/login#token=%s  (the link fills the token in, one click on Log in; the token stays out of the server's logs)", d.url, d.token)

	changes := []demoChange{
		{"a good change: order-service v2", demoapp.Behaviour("v2", 0, 0), false, "succeeded"},
		{"a bad change: v3 answers 5xx to 30% of requests", demoapp.Behaviour("v3", 0.3, 0), false, "failed"},
		{"a vulnerable change: v4 links golang.org/x/text v0.3.6", demoapp.Behaviour("v4", 0, 0), true, "failed"},
	}
	for i, c := range changes {
		say("\n== %d. %s", i+1, c.title)
		status, err := d.release(ctx, c)
		if err != nil {
			return err
		}
		if status != c.want {
			return fmt.Errorf("release %d (%s) ended %s; the demo expected %s; the engine's log:\n%s", i+1, c.title, status, c.want,
				incluster.EngineLog(ctx, d.env, 100))
		}
	}
	rb, err := d.lastRollback(ctx)
	if err != nil {
		return err
	}
	say("\n== Why was release 2 rolled back?  (slipway rollbacks show %d)\n%s", rb.ID, rb.Explain())
	d.summary(rb)
	if os.Getenv("DEMO_EXIT") == "1" {
		return nil
	}
	say("\nEverything keeps running; press Ctrl-C to stop and remove it.")
	<-ctx.Done()
	return nil
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// summary says what happened and where to look.
func (d *demoEnv) summary(rb view.RollbackView) {
	fmt.Fprintf(d.out, `
What happened:
  0. Slipway's image was built by Kaniko from the Dockerfile, and Argo CD deployed it from deploy/
     (through the platform repo's local overlay) with its Trivy server: every release ran in the cluster;
  1. the good change was cloned, tested and built by Kaniko in Pods, scanned clean by the Trivy server,
     committed by digest to the config repo, synced by Argo CD, canaried 10 → 25 → 50 → 100 under
     Prometheus analysis and promoted: the stable workload now runs it;
  2. the bad change went the same way until its first canary step: success-rate fell below 99%%,
     and Slipway rolled it back in one commit (%.7s) — %s;
  3. the vulnerable change was stopped by the scan (CVE-2021-38561, HIGH) before anything was deployed.

Where to look:
  the UI:          %s/login#token=%s   (releases, runs with live logs, rollbacks with their charts;
                   forwarded to Slipway's Service %s)
  API (token %s):  curl -H 'Authorization: Bearer %s' %s/api/v1/rollbacks
  CLI:             export SLIPWAY_SERVER=%s SLIPWAY_TOKEN=%s
                   %s runs; %s rollbacks show %d; %s logs 2
  the service:     curl -H 'Host: order-service.shop' http://%s/
  Prometheus:      %s/graph?g0.expr=sum(rate(istio_requests_total[30s]))by(destination_workload,response_code)
  config repo:     git clone %s   (every weight change and the rollback are commits)
  Gitea:           %s/shop/order-service/commits/branch/main   (each commit's status; user %s, password %s)
  Argo CD API:     %s (gRPC, plain text; applications slipway and order-service)
  Slipway itself:  git clone %s   (deploy/ and the local overlay Argo CD syncs; image %s)
  the cluster:     KUBECONFIG=%s   (namespace slipway: the engine and the Trivy server;
                   slipway-builds: the stage Pods while they run)
`, rb.RollbackCommit, rb.Summary(), d.url, d.token, d.slipway.URL, d.token, d.token, d.url, d.url, d.token, d.bin, d.bin, rb.ID, d.bin,
		d.env.Proxy.Addr, d.env.Prometheus.URL, d.configRepo, d.env.Gitea.URL, gitea.Admin, d.env.Gitea.Password, d.env.ArgoCD.Server,
		d.slipway.Platform, d.slipway.Image, d.env.Cluster.Kubeconfig)
}
