// Package localenv is the one launcher of the local environment that
// tests and the demo (cmd/slipway-demo) run against, on loopback, with free ports and
// temporary directories: a git server, a container registry (with a
// busybox base image) and an offline Trivy database; with Options.Cluster
// also a real control plane (etcd, kube-apiserver, kube-controller-manager)
// and a real node (kubelet, kube-proxy, kube-scheduler on containerd,
// package kubenode); with Options.Mesh the mesh proxy and Prometheus
// scraping it every second; with Options.ArgoCD the real Argo CD. Parts
// that do not need each other come up (and go down) side by side. Every
// component logs to a file under the directory; Close tears everything
// down, newest first, and leaves no process behind.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/slipwayci/slipway/integration/argocd"
	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/integration/gitea"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/integration/meshproxy"
	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/integration/promserver"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/trivydb"
)

// Options chooses the parts beyond git, registry and Trivy.
type Options struct {
	Cluster bool // control plane and node
	Mesh    bool // mesh proxy and Prometheus (implies Cluster)
	ArgoCD  bool // the real Argo CD (implies Cluster)
	Gitea   bool // a real Gitea, the forge pushes go to
}

// Env is a running local environment.
type Env struct {
	Dir      string
	Git      *gitserver.Server
	Registry *registry.Registry
	Base     string // the busybox base image, REGISTRY/base/busybox:1
	TrivyDir string // Trivy cache holding the offline database

	Cluster    *cluster.Cluster
	Kube       *kubernetes.Clientset
	Dynamic    dynamic.Interface
	Node       *kubenode.Node
	Proxy      *meshproxy.Proxy
	Prometheus *promserver.Server
	ArgoCD     *argocd.ArgoCD
	Gitea      *gitea.Gitea

	// With a cluster, the git server and the registry as Pods reach them
	// (kubenode.Node.Expose): a git URL base (http://NODE:PORT) and a
	// registry host:port; images named with it are pulled by the node too.
	// PodBase is Base as Pods name it.
	PodGit, PodRegistry, PodBase string

	// Timings is how long each part took to come up, in the order they
	// came up (parts of one phase come up side by side).
	Timings []Timing

	cancel  context.CancelFunc
	mu      sync.Mutex
	closers [][]func() // by start phase

}

// Timing is one part's start-up time.
type Timing struct {
	Part string
	Took time.Duration
}

// Start brings the environment up under dir. On error, what was started
// is stopped again.
func Start(ctx context.Context, dir string, opts ...Options) (e *Env, err error) {
	var o Options
	for _, x := range opts {
		o = x
	}
	if o.Mesh || o.ArgoCD {
		o.Cluster = true
	}
	e = &Env{Dir: dir, TrivyDir: filepath.Join(dir, "trivy")}
	var bg context.Context
	bg, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	started := e // e is nil by the time a failed Start returns
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	// Parts come up in two phases, each part of a phase beside the others:
	// what needs nothing, then what needs the control plane (and the
	// registry and git server, which the node exposes to Pods). Within a
	// lane the parts come up one after the other.
	type part struct {
		name string
		on   bool
		run  func() error
	}
	phases := [][][]part{{
		{{"registry", true, func() error { return e.startRegistry(ctx) }}},
		{{"git server", true, func() error { return e.startGit(bg) }}},
		{{"trivy database", true, func() error { return trivydb.Write(e.TrivyDir, trivydb.Fixture) }}},
		{{"control plane", o.Cluster, func() error { return e.startCluster(ctx) }}},
		{{"gitea", o.Gitea, func() error { return e.startGitea(ctx) }}},
	}, {
		{{"node", o.Cluster, func() error { return e.startNode(ctx) }}},
		{{"argo cd", o.ArgoCD, func() error { return e.startArgoCD(ctx) }}},
		{
			{"routing CRDs", o.Cluster, func() error { return e.installRouting(ctx) }},
			{"mesh proxy", o.Mesh, func() error { return e.startProxy(bg) }},
			{"prometheus", o.Mesh, func() error { return e.startPrometheus(ctx) }},
		},
	}}
	for _, lanes := range phases {
		e.closers = append(e.closers, nil)
		errs := make([]error, len(lanes))
		var wg sync.WaitGroup
		for i, lane := range lanes {
			wg.Go(func() {
				for _, p := range lane {
					if !p.on {
						continue
					}
					began := time.Now()
					if err := p.run(); err != nil {
						errs[i] = fmt.Errorf("starting the %s: %w", p.name, err)
						return
					}
					e.mu.Lock()
					e.Timings = append(e.Timings, Timing{Part: p.name, Took: time.Since(began)})
					e.mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// onClose adds stop to what Close calls: with the other parts of the
// phase that started it, before the parts of earlier phases.
func (e *Env) onClose(stop func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	last := len(e.closers) - 1
	e.closers[last] = append(e.closers[last], stop)
}

func (e *Env) startRegistry(ctx context.Context) error {
	r, err := registry.Start(ctx, filepath.Join(e.Dir, "registry"))
	if err != nil {
		return err
	}
	e.Registry = r
	e.onClose(r.Stop)
	e.Base = r.Addr + "/base/busybox:1"
	if _, err := registry.PushBusybox(e.Base); err != nil {
		return fmt.Errorf("pushing the base image: %w", err)
	}
	return nil
}

func (e *Env) startGit(ctx context.Context) error {
	g, err := gitserver.Start(ctx, filepath.Join(e.Dir, "git"))
	if err != nil {
		return err
	}
	e.Git = g
	e.onClose(func() { g.Close() })
	return nil
}

func (e *Env) startGitea(ctx context.Context) error {
	g, err := gitea.Start(ctx, filepath.Join(e.Dir, "gitea"))
	if err != nil {
		return err
	}
	e.Gitea = g
	e.onClose(g.Close)
	return nil
}

func (e *Env) startCluster(ctx context.Context) error {
	c, err := cluster.Start(ctx, filepath.Join(e.Dir, "cluster"), cluster.Options{RealNode: true, Advertise: kubenode.ControlPlane})
	if err != nil {
		return err
	}
	e.Cluster = c
	e.onClose(c.Stop)
	if e.Kube, err = c.Client(); err != nil {
		return err
	}
	e.Dynamic, err = dynamic.NewForConfig(c.Config())
	return err
}

func (e *Env) startNode(ctx context.Context) error {
	pause := e.Registry.Addr + "/base/pause:1"
	if _, err := registry.PushPause(pause); err != nil {
		return fmt.Errorf("pushing the sandbox image: %w", err)
	}
	n, err := kubenode.Start(ctx, filepath.Join(e.Dir, "node"), e.Cluster, pause, e.Registry.Addr)
	if err != nil {
		return err
	}
	e.Node = n
	e.onClose(n.Stop)
	if e.PodRegistry, err = n.Expose(e.Registry.Addr); err != nil {
		return err
	}
	e.PodBase = strings.Replace(e.Base, e.Registry.Addr, e.PodRegistry, 1)
	gitHost := strings.TrimPrefix(e.Git.URL, "http://")
	podGit, err := n.Expose(gitHost)
	if err != nil {
		return err
	}
	e.PodGit = "http://" + podGit
	return nil
}

func (e *Env) installRouting(ctx context.Context) error {
	if err := meshproxy.InstallCRDs(ctx, e.Dynamic); err != nil {
		return err
	}
	return procs.WaitUntil(ctx, 30*time.Second, "the routing CRDs to be served", func() bool { return meshproxy.WaitCRDs(ctx, e.Dynamic) == nil })
}

func (e *Env) startArgoCD(ctx context.Context) error {
	a, err := argocd.Start(ctx, filepath.Join(e.Dir, "argocd"), e.Cluster)
	if err != nil {
		return err
	}
	e.ArgoCD = a
	e.onClose(a.Stop)
	return nil
}

// startProxy starts the mesh proxy, which stops with the other parts of
// its phase: its watches must end before the API server stops, whose
// graceful shutdown would otherwise wait for them (10 s, then killed).
func (e *Env) startProxy(bg context.Context) error {
	ctx, stop := context.WithCancel(bg)
	e.onClose(stop)
	p, err := meshproxy.Start(ctx, e.Kube, e.Dynamic)
	e.Proxy = p
	return err
}

func (e *Env) startPrometheus(ctx context.Context) error {
	p, err := promserver.Start(ctx, filepath.Join(e.Dir, "prometheus"), []string{e.Proxy.MetricsAddr}, "")
	if err != nil {
		return err
	}
	e.Prometheus = p
	e.onClose(p.Stop)
	return nil
}

// Close stops what Start started: the parts of the latest phase first,
// side by side, then those of the phase before.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		var wg sync.WaitGroup
		for _, stop := range e.closers[i] {
			wg.Go(stop)
		}
		wg.Wait()
	}
	e.closers = nil
	if e.cancel != nil {
		e.cancel()
	}
}

// Logs returns the tail of every component's log, for failing tests.
func (e *Env) Logs(n int) string {
	var s string
	if e.Cluster != nil {
		s += e.Cluster.Tails(n)
	}
	if e.Node != nil {
		s += e.Node.Tails(n)
	}
	if e.ArgoCD != nil {
		for _, p := range e.ArgoCD.Procs() {
			s += fmt.Sprintf("--- %s\n%s\n", p.Name, p.Tail(n))
		}
	}
	return s
}

// TrivyEnv is the environment that points the scan kind at the offline database.
func (e *Env) TrivyEnv() []string {
	return []string{"SLIPWAY_TRIVY_CACHE=" + e.TrivyDir, "SLIPWAY_TRIVY_OFFLINE=1"}
}

// Procs lists every process the environment started.
func (e *Env) Procs() []*procs.Proc {
	var out []*procs.Proc
	if e.Registry != nil {
		out = append(out, e.Registry.Procs()...)
	}
	if e.Cluster != nil {
		out = append(out, e.Cluster.Procs()...)
	}
	if e.Node != nil {
		out = append(out, e.Node.Procs()...)
	}
	if e.ArgoCD != nil {
		out = append(out, e.ArgoCD.Procs()...)
	}
	if e.Prometheus != nil {
		out = append(out, e.Prometheus.Procs()...)
	}
	return out
}
