package integration

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/loadgen"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/internal/eventually"
)

// syncAndWait syncs app at revision through Argo CD's API and waits until
// Argo CD reports that revision Synced and Healthy.
func syncAndWait(t testing.TB, apps application.ApplicationServiceClient, app, revision string) time.Duration {
	t.Helper()
	ctx := context.Background()
	began := time.Now()
	prune := true
	_, err := apps.Sync(ctx, &application.ApplicationSyncRequest{Name: &app, Revision: &revision, Prune: &prune})
	must(t, err)
	last := &v1alpha1.Application{}
	err = eventually.Within(time.Minute, func() bool {
		a, err := apps.Get(ctx, &application.ApplicationQuery{Name: &app})
		if err != nil {
			return false
		}
		last = a
		op := a.Status.OperationState
		return a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && a.Status.Sync.Revision == revision &&
			a.Status.Health.Status == "Healthy" && op != nil && op.Phase == "Succeeded" && op.SyncResult != nil && op.SyncResult.Revision == revision
	})
	if err != nil {
		t.Fatalf("application %s never became Synced and Healthy at %s (%v): sync %+v health %+v operation %+v", app, revision, err,
			last.Status.Sync, last.Status.Health, last.Status.OperationState)
	}
	return time.Since(began)
}

// The order-service example, released by the real Argo CD: an
// Application is synced through Argo CD's own gRPC client, becomes Synced
// and Healthy, serves ~90/10 through the mesh proxy, Prometheus answers
// Flagger's success-rate query, and new weights committed to git and
// synced move the split.
func TestArgoCDSyncsTheOrderServiceAndTheSplitFollowsGit(t *testing.T) {
	onNode(t)
	lc := startLocalCluster(t, localenv.Options{Mesh: true, ArgoCD: true})
	ctx := context.Background()
	proxy, prom := lc.Proxy, lc.Prometheus
	repo, err := lc.Git.CreateRepo("gitops")
	must(t, err)
	wt, err := gitserver.Clone(repo, filepath.Join(lc.dir, "gitops"))
	must(t, err)
	v1 := pushDemoImage(t, lc.reg, "shop/order-service:v1", "v1", 0, 0)
	v2 := pushDemoImage(t, lc.reg, "shop/order-service:v2", "v2", 0, 0)
	rev1, err := wt.Commit("main", "order-service: v1 stable, v2 canary at 10%", demoapp.Manifests(v1, v2, 90, 10))
	must(t, err)
	must(t, wt.Push("main"))

	apps := orderServiceApp(t, lc.Env, lc.dir, repo)
	name := "order-service"
	took := syncAndWait(t, apps, name, rev1)
	t.Logf("first sync to Synced+Healthy: %s", took)

	res := loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-service.shop", 400, 2500*time.Millisecond)
	c1, c2 := countVersions(res)
	if res.Codes[200] != 1000 || c2 < 60 || c2 > 140 {
		t.Fatalf("90/10 through Argo CD: codes %v, v1 %d, v2 %d, answers %v", res.Codes, c1, c2, res.Bodies)
	}
	waitFor(t, "Prometheus to report the canary's success rate", func() bool {
		return canarySuccessRate(t, prom.URL, "shop", "order-service-v2") == 100
	})

	rev2, err := wt.Commit("main", "order-service: canary to 50%", demoapp.Manifests(v1, v2, 50, 50))
	must(t, err)
	must(t, wt.Push("main"))
	took = syncAndWait(t, apps, name, rev2)
	t.Logf("weight change sync to Synced+Healthy: %s", took)
	waitFor(t, "the proxy to apply the new weights", func() bool {
		_, n := countVersions(loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-service.shop", 200, 500*time.Millisecond))
		return n >= 30
	})
	res = loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-service.shop", 400, 2500*time.Millisecond)
	c1, c2 = countVersions(res)
	if c2 < 430 || c2 > 570 {
		t.Errorf("50/50 after the sync: v1 %d, v2 %d", c1, c2)
	}
}

// orderServiceApp creates the order-service Application in Argo CD — its
// manifests at apps/order-service of repo, deployed to namespace shop —
// and returns an Application client for the test.
func orderServiceApp(t testing.TB, env *localenv.Env, dir, repo string) application.ApplicationServiceClient {
	t.Helper()
	if err := env.ArgoCD.CreateApp(context.Background(), dir, "order-service", repo, "apps/order-service", "shop"); err != nil {
		t.Fatal(err)
	}
	return argoApps(t, env, dir)
}

// argoApps is an Application client of the environment's Argo CD, closed
// when the test ends.
func argoApps(t testing.TB, env *localenv.Env, dir string) application.ApplicationServiceClient {
	t.Helper()
	client, err := env.ArgoCD.Client(dir)
	if err != nil {
		t.Fatal(err)
	}
	closer, apps, err := client.NewApplicationClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	return apps
}
