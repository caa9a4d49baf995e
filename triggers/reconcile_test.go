package triggers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

// forgeHeads is a forge's branch and tag heads as a listing shows them.
type forgeHeads struct {
	mu    sync.Mutex
	heads map[string]map[string]string // repository → ref → commit
}

func (f *forgeHeads) set(repo, ref, sha string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.heads[repo] == nil {
		f.heads[repo] = map[string]string{}
	}
	if sha == "" {
		delete(f.heads[repo], ref)
	} else {
		f.heads[repo][ref] = sha
	}
}

func (f *forgeHeads) list(_ context.Context, repo *Repo) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.heads[repo.Config.Name]), nil
}

// The commits of the recorded deliveries (testdata).
const (
	gitlabBefore = "95790bf891e76fee5e1747ab589903a6a1f80f22"
	gitlabAfter  = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
	giteaBefore  = "28e1879d029cb852e4844d9c718537df08844e03"
	giteaAfter   = "bffeb74224043ba2feb48d137756c8a9331c449a"
	gitlabTag    = "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"
)

// A listing finds what deliveries missed, and nothing they did not: the
// first listing only records the heads; a moved head waits its grace,
// then starts the pipelines its push matches, under the delivery's own
// key (the delivery arriving late starts nothing more, and a head a
// delivery already moved is not found again); a new tag is a push from
// nothing; a deleted branch starts nothing; a pipeline with path filters
// is not started by a push whose paths a listing cannot tell.
func TestReconcilerFindsWhatDeliveriesMissed(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	ctx := context.Background()
	forge := &forgeHeads{heads: map[string]map[string]string{}}
	forge.set("diaspora", "refs/heads/main", gitlabBefore)
	forge.set("diaspora", "refs/heads/old", "1111111111111111111111111111111111111111")
	forge.set("webhooks", "refs/heads/develop", giteaBefore)
	forge.set("hello", "refs/heads/main", "2222222222222222222222222222222222222222")
	var found atomic.Int64
	rc := NewReconciler(it.in, time.Minute, WithLister(forge.list), WithGrace(10*time.Second), WithFound(func(string) { found.Add(1) }))
	t0 := time.Now()
	pass := func(at time.Duration) bool {
		t.Helper()
		waiting, err := rc.Pass(ctx, t0.Add(at))
		if err != nil {
			t.Fatalf("pass at %s: %v", at, err)
		}
		return waiting
	}
	if pass(0); it.runCount(t) != 0 {
		t.Fatalf("the first listing started %d runs", it.runCount(t))
	}

	// Missed: diaspora's main moved, a tag was pushed, a branch deleted;
	// hello's main moved (its pipelines filter paths).
	forge.set("diaspora", "refs/heads/main", gitlabAfter)
	forge.set("diaspora", "refs/tags/v1.0.0", gitlabTag)
	forge.set("diaspora", "refs/heads/old", "")
	forge.set("hello", "refs/heads/main", "3333333333333333333333333333333333333333")
	if waiting := pass(time.Second); !waiting || it.runCount(t) != 0 {
		t.Fatalf("within the grace: waiting %v, %d runs; want waiting, none", waiting, it.runCount(t))
	}
	if waiting := pass(12 * time.Second); waiting || it.runCount(t) != 2 || found.Load() != 3 {
		t.Fatalf("after the grace: waiting %v, %d runs, %d found; want the push to main and the tag (2 runs, 3 pushes found)", waiting, it.runCount(t), found.Load())
	}
	runs, _ := it.st.ListRuns(ctx, store.RunFilter{Limit: 10})
	got := map[string]string{}
	for _, r := range runs {
		got[r.Trigger.Ref] = r.Trigger.SHA
	}
	if !maps.Equal(got, map[string]string{"refs/heads/main": gitlabAfter, "refs/tags/v1.0.0": gitlabTag}) {
		t.Errorf("runs started for %v", got)
	}
	ds, _ := it.st.ListDeliveries(ctx, store.DeliveryFilter{Repo: "hello"})
	if len(ds) != 1 || ds[0].Forge != ReconcilerForge || len(ds[0].Matches) != 2 || !strings.Contains(ds[0].Matches[0].Reason, "found by listing the repository") {
		t.Errorf("hello's listed push: %+v", ds)
	}
	if heads, _, _ := it.st.ListHeads(ctx, "diaspora"); heads["refs/heads/old"] != "" || heads["refs/heads/main"] != gitlabAfter {
		t.Errorf("diaspora's heads after the listing: %v", heads)
	}

	// The deliveries arrive late: the same pushes, nothing more.
	for _, d := range []delivery{{"gitlab", "Push Hook", "late-1", "gl-token", fixture(t, "gitlab-push.json")}, {"gitlab", "Tag Push Hook", "late-2", "gl-token", fixture(t, "gitlab-tag-push.json")}} {
		if code, a, raw := it.send(t, d); code != 202 || len(a.Runs) != 1 || !strings.Contains(raw, "already started run") {
			t.Errorf("the late delivery %s: %d %s", d.id, code, raw)
		}
	}
	// A delivery that arrived moves the head: the listing finds nothing.
	if code, _, raw := it.send(t, delivery{"gitea", "push", "on-time", "gt-secret", fixture(t, "gitea-push.json")}); code != 202 {
		t.Fatalf("gitea delivery: %d %s", code, raw)
	}
	forge.set("webhooks", "refs/heads/develop", giteaAfter)
	pass(13 * time.Second)
	pass(30 * time.Second)
	if n := it.runCount(t); n != 3 || found.Load() != 3 {
		t.Errorf("%d runs, %d found after the deliveries; want 3 runs (2 found, 1 delivered), 3 found", n, found.Load())
	}
}

// A push to many new branches at once starts at most MaxFoundPerListing
// of them a listing; the rest wait for the next.
func TestReconcilerBoundsAListing(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	ctx := context.Background()
	forge := &forgeHeads{heads: map[string]map[string]string{}}
	forge.set("diaspora", "refs/heads/main", gitlabBefore)
	var found atomic.Int64
	rc := NewReconciler(it.in, time.Minute, WithLister(forge.list), WithGrace(0), WithFound(func(string) { found.Add(1) }))
	t0 := time.Now()
	if _, err := rc.Pass(ctx, t0); err != nil {
		t.Fatal(err)
	}
	for i := range MaxFoundPerListing + 50 {
		forge.set("diaspora", fmt.Sprintf("refs/heads/b%03d", i), fmt.Sprintf("%040x", i+1))
	}
	for i, want := range []int64{MaxFoundPerListing, MaxFoundPerListing + 50} {
		waiting, err := rc.Pass(ctx, t0.Add(time.Duration(i+1)*time.Second))
		if err != nil || found.Load() != want || waiting != (i == 0) {
			t.Errorf("listing %d: %d found, waiting %v, %v; want %d found", i+1, found.Load(), waiting, err, want)
		}
	}
	if n := it.runCount(t); n != 0 {
		t.Errorf("%d runs for branches no pipeline watches", n)
	}
}

// flakySource fails its first n loads.
type flakySource struct {
	Source
	fails *atomic.Int64
}

func (f flakySource) Load(ctx context.Context, ref, sha string) (*pipeline.Pipeline, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("the forge answered 502")
	}
	return f.Source.Load(ctx, ref, sha)
}

// A delivery that failed (its pipeline could not be read) is processed
// again by the next pass, and starts its run once.
func TestReconcilerRetriesFailedDeliveries(t *testing.T) {
	t.Parallel()
	fails := &atomic.Int64{}
	fails.Store(2) // the listing that finds the push, and the retry in the same pass
	flaky := &Repo{Config: engineconfig.Repository{Name: "flaky", URL: "https://git.example.com/team/flaky.git", Forge: "gitea"}, Secret: "s",
		Sources: []Source{flakySource{filePipeline(t, "flaky", `{push: {branches: [main]}}`), fails}}}
	it := newIntakeTest(t, flaky)
	ctx := context.Background()
	forge := &forgeHeads{heads: map[string]map[string]string{}}
	forge.set("flaky", "refs/heads/main", giteaBefore)
	rc := NewReconciler(it.in, time.Minute, WithLister(forge.list), WithGrace(0))
	t0 := time.Now()
	rc.Pass(ctx, t0)
	forge.set("flaky", "refs/heads/main", giteaAfter)
	if _, err := rc.Pass(ctx, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if ds, _ := it.st.ListDeliveries(ctx, store.DeliveryFilter{Repo: "flaky"}); len(ds) != 1 || ds[0].Status != store.DeliveryFailed || it.runCount(t) != 0 {
		t.Fatalf("after a failed read: %+v, %d runs", ds, it.runCount(t))
	}
	if _, err := rc.Pass(ctx, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ds, _ := it.st.ListDeliveries(ctx, store.DeliveryFilter{Repo: "flaky"}); len(ds) != 1 || ds[0].Status != store.DeliveryProcessed || it.runCount(t) != 1 {
		t.Errorf("after the retry: %+v, %d runs; want processed, 1 run", ds, it.runCount(t))
	}
}

// A repository never listed before (its listing failed, or the engine is
// new) whose head a delivery recorded: the first listing compares that
// head like any other, and records the refs no delivery moved as they
// stand.
func TestReconcilerFirstListingKeepsDeliveredHeads(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	ctx := context.Background()
	if code, _, raw := it.send(t, delivery{"gitlab", "Push Hook", "d-1", "gl-token", fixture(t, "gitlab-push.json")}); code != 202 {
		t.Fatalf("delivery: %d %s", code, raw)
	}
	forge := &forgeHeads{heads: map[string]map[string]string{}}
	forge.set("diaspora", "refs/heads/main", "4444444444444444444444444444444444444444")
	forge.set("diaspora", "refs/heads/other", "5555555555555555555555555555555555555555")
	rc := NewReconciler(it.in, time.Minute, WithLister(forge.list), WithGrace(0))
	if _, err := rc.Pass(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	runs, _ := it.st.ListRuns(ctx, store.RunFilter{Limit: 10})
	if len(runs) != 2 || runs[0].Trigger.SHA != "4444444444444444444444444444444444444444" {
		t.Errorf("runs after the first listing: %d, newest %+v; want the delivered push and main's missed one", len(runs), runs[0].Trigger)
	}
	if heads, listed, _ := it.st.ListHeads(ctx, "diaspora"); !listed || heads["refs/heads/other"] != "5555555555555555555555555555555555555555" {
		t.Errorf("heads after the first listing: %v, listed %v", heads, listed)
	}
}
