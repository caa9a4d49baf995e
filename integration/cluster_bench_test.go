package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/argocd"
	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/integration/meshproxy"
	"github.com/slipwayci/slipway/internal/benchreport"
	"github.com/slipwayci/slipway/stages/gitops"
)

// Benchmarks of the local environment. They report numbers; nothing about
// speed is asserted.

// BenchmarkLauncher starts and tears down the whole environment (the
// median teardown is reported as stop-s); the first
// start of the process is reported apart (cold: binaries not yet in the
// page cache, images not yet unpacked) from the following (warm).
func BenchmarkLauncher(b *testing.B) {
	skipWithoutCluster(b)
	var starts, stops []time.Duration
	for b.Loop() {
		dir := b.TempDir()
		began := time.Now()
		env, err := localenv.Start(context.Background(), dir, localenv.Options{Mesh: true, ArgoCD: true})
		if err != nil {
			b.Fatal(err)
		}
		starts = append(starts, time.Since(began))
		parts := []string{}
		for _, tm := range env.Timings {
			parts = append(parts, fmt.Sprintf("%s %s", tm.Part, tm.Took.Round(time.Millisecond)))
		}
		began = time.Now()
		env.Close()
		stops = append(stops, time.Since(began))
		b.Logf("start %d: %s (%s); down in %s", len(starts), starts[len(starts)-1].Round(time.Millisecond), strings.Join(parts, ", "),
			stops[len(stops)-1].Round(time.Millisecond))
	}
	b.ReportMetric(benchreport.Median(stops).Seconds(), "stop-s")
	b.ReportMetric(starts[0].Seconds(), "first-start-s")
	if len(starts) > 1 {
		b.ReportMetric(benchreport.Median(starts[1:]).Seconds(), "warm-start-s")
	}
}

func skipWithoutCluster(b *testing.B) {
	b.Helper()
	if len(argocdMissing()) > 0 {
		b.Skipf("needs %v (make tools, root)", argocdMissing())
	}
}

func argocdMissing() []string {
	return append(argocd.Missing(), clusterMissing()...)
}

// BenchmarkSyncToServing measures, for new canary images one after
// another: the config-repo write (clone, edit by locator, commit, push —
// what the deploy stage does), then from Argo CD's Sync call to the
// revision Synced (operation succeeded), the new Pod's process running,
// the Pod Ready, and the new version answering through the mesh proxy.
func BenchmarkSyncToServing(b *testing.B) {
	skipWithoutCluster(b)
	ctx := context.Background()
	dir := b.TempDir()
	env, err := localenv.Start(ctx, dir, localenv.Options{Mesh: true, ArgoCD: true})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	repo, _ := env.Git.CreateRepo("gitops")
	wt, err := gitserver.Clone(repo, filepath.Join(dir, "gitops"))
	if err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	v1 := pushDemoImage(t, env.Registry, "shop/order-service:v1", "v1", 0, 0)
	if _, err := wt.Commit("main", "order-service v1", demoapp.Manifests(v1, v1, 100, 0)); err != nil {
		b.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		b.Fatal(err)
	}
	apps := orderServiceApp(b, env, dir, repo)
	name := "order-service"
	if _, err := wt.Commit("main", "50/50", demoapp.Manifests(v1, v1, 50, 50)); err != nil {
		b.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		b.Fatal(err)
	}
	writer := &gitops.Writer{URL: repo, Branch: "main"}
	var gits, syncs, runs, readies, serves []time.Duration
	for i := 0; b.Loop(); i++ {
		version := fmt.Sprintf("v2-%d", i)
		v2 := pushDemoImage(t, env.Registry, "shop/order-service:"+version, version, 0, 0)
		image, digest, _ := strings.Cut(v2, "@")
		wrote := time.Now()
		res, err := writer.Write(ctx, "canary "+version, func(root string) (bool, error) {
			return gitops.SetImage(root, "apps/order-service", gitops.Locator{ManifestFile: "deployment-v2.yaml", Container: "order-service"}, image, digest)
		})
		if err != nil {
			b.Fatal(err)
		}
		gits = append(gits, time.Since(wrote))
		rev := res.Commit
		began := time.Now()
		prune := true
		if _, err := apps.Sync(ctx, &application.ApplicationSyncRequest{Name: &name, Revision: &rev, Prune: &prune}); err != nil {
			b.Fatal(err)
		}
		var synced, running, ready, serving time.Duration
		for deadline := time.Now().Add(2 * time.Minute); serving == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if synced == 0 {
				if a, err := apps.Get(ctx, &application.ApplicationQuery{Name: &name}); err == nil && a.Status.OperationState != nil &&
					a.Status.OperationState.Phase == "Succeeded" && a.Status.OperationState.SyncResult != nil && a.Status.OperationState.SyncResult.Revision == rev {
					synced = time.Since(began)
				}
			}
			if running == 0 || ready == 0 {
				pods, _ := env.Kube.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "version=v2"})
				for _, p := range pods.Items {
					if len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Image != v2 {
						continue
					}
					if running == 0 && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil {
						running = time.Since(began)
					}
					for _, c := range p.Status.Conditions {
						if ready == 0 && c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
							ready = time.Since(began)
						}
					}
				}
			}
			if ready != 0 && servedBy(env, version) {
				serving = time.Since(began)
			}
		}
		if serving == 0 {
			b.Fatalf("version %s never served (synced %s, running %s, ready %s)", version, synced, running, ready)
		}
		syncs, runs, readies, serves = append(syncs, synced), append(runs, running), append(readies, ready), append(serves, serving)
	}
	b.ReportMetric(benchreport.Median(gits).Seconds(), "p50-git-write-s")
	b.ReportMetric(benchreport.Median(syncs).Seconds(), "p50-synced-s")
	b.ReportMetric(benchreport.Median(runs).Seconds(), "p50-running-s")
	b.ReportMetric(benchreport.Median(readies).Seconds(), "p50-ready-s")
	b.ReportMetric(benchreport.Median(serves).Seconds(), "p50-serving-s")
}

// servedBy sends a few requests through the proxy and reports whether
// version answered one.
func servedBy(env *localenv.Env, version string) bool {
	for range 10 {
		resp, err := httpGetHost("http://"+env.Proxy.Addr+"/", "order-service.shop")
		if err == nil && strings.Contains(resp, "order-service "+version+" ok") {
			return true
		}
	}
	return false
}

// BenchmarkWeightChangeToProxy measures the time from a VirtualService
// update returned by the API server to the mesh proxy routing by it.
func BenchmarkWeightChangeToProxy(b *testing.B) {
	if m := clusterMissing(); len(m) > 0 {
		b.Skipf("needs %v", m)
	}
	ctx := context.Background()
	env, err := localenv.Start(ctx, b.TempDir(), localenv.Options{Mesh: true})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	vsClient := env.Dynamic.Resource(meshproxy.VirtualServices).Namespace("default")
	if _, err := vsClient.Create(ctx, virtualService("default", 90, 10), metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	for i := 0; b.Loop(); i++ {
		vs, err := vsClient.Get(ctx, "order-service", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		vs.Object["spec"] = virtualService("default", 90-i%50, 10+i%50).Object["spec"]
		updated, err := vsClient.Update(ctx, vs, metav1.UpdateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		for env.Proxy.ResourceVersion("VirtualService", "default", "order-service") != updated.GetResourceVersion() {
			if time.Since(began) > 10*time.Second {
				b.Fatal("the proxy never saw the update")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lags = append(lags, time.Since(began))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	b.ReportMetric(float64(benchreport.Median(lags).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
}
