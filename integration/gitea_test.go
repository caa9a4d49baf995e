package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/gitea"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/internal/benchreport"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/triggers"
)

// needGitea starts the pinned Gitea under dir, or skips (fails with CI=true).
func needGitea(t testing.TB, dir string) *gitea.Gitea {
	t.Helper()
	missing := gitea.Missing()
	need(t, len(missing) == 0, strings.Join(missing, ", "))
	g, err := gitea.Start(context.Background(), dir)
	must(t, err)
	t.Cleanup(g.Close)
	return g
}

// giteaRelease is a Gitea with repository shop/web, a `slipway serve`
// watching it (its pipeline read from the repository, statuses reported
// to Gitea) and a work tree of it to push from.
type giteaRelease struct {
	g       *gitea.Gitea
	eng     *engineProc
	wt      *gitserver.WorkTree
	repoURL string
	hook    int64 // the engine's webhook
}

func newGiteaRelease(t testing.TB) *giteaRelease {
	t.Helper()
	dir := t.TempDir()
	g := needGitea(t, filepath.Join(dir, "gitea"))
	ctx := context.Background()
	must(t, g.CreateOrg(ctx, "shop"))
	repoURL, err := g.CreateRepo(ctx, "shop", "web")
	must(t, err)
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(engineHeader+`  - name: web
    url: %q
    forge: gitea
    webhookSecret: {file: hook-secret}
    token: {file: gitea-token}
    pipelines: [{path: .slipway/pipeline.yaml}]
    apps: [{name: shop}]
    status: {token: {file: gitea-token}}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, repoURL))
	writeFile(t, dir, "hook-secret", "gitea-hook-secret\n")
	writeFile(t, dir, "gitea-token", g.Token+"\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	eng := startServe(t, config)
	hook, err := g.AddWebhook(ctx, "shop", "web", eng.url+"/hooks/gitea", "gitea-hook-secret", "push", "create", "delete")
	must(t, err)
	wt, err := gitserver.Clone(g.CloneURLWithToken(repoURL), filepath.Join(dir, "wt"))
	must(t, err)
	return &giteaRelease{g: g, eng: eng, wt: wt, repoURL: repoURL, hook: hook}
}

const giteaGood = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: shop}
on: {push: {branches: [main]}}
stages:
  - {name: test, fake: {log: ["testing {{ .Run.ShortSHA }}"]}}
  - {name: build, fake: {log: ["building"], outputs: {digest: "sha256:feed"}}}
`

// A git push to a real Gitea is a release: Gitea sends the webhook it was
// given (signed with the repository's secret), the engine clones from
// Gitea with its token, reads the pipeline at the pushed commit and runs
// it, and the commit's statuses — read back through Gitea's API — say
// what happened: success for a good push, failure with the reason for a
// bad one. A branch deletion reaches the engine and starts nothing.
func TestGiteaPushToStatus(t *testing.T) {
	offNode(t)
	r := newGiteaRelease(t)
	g, eng, wt, ctx := r.g, r.eng, r.wt, context.Background()
	rec := recordDeliveries(t, g)
	good, err := wt.Commit("main", "a good change", map[string]string{".slipway/pipeline.yaml": giteaGood})
	must(t, err)
	pushed := time.Now()
	must(t, wt.Push("main"))
	first := waitStatus(t, g, good, "success")
	t.Logf("push → success on the commit: %s", time.Since(pushed).Round(time.Millisecond))
	if first.Context != "slipway/shop" || !strings.HasPrefix(first.TargetURL, "https://slipway.test/runs/") || !strings.HasPrefix(first.Description, "succeeded in") {
		t.Errorf("the good commit's status: %+v", first)
	}
	all, err := g.Statuses(ctx, "shop", "web", good)
	must(t, err)
	if states := statesOf(all); !strings.Contains(states, "pending") {
		t.Errorf("the good commit's statuses, newest first: %s", states)
	}

	bad, err := wt.Commit("main", "a bad change", map[string]string{".slipway/pipeline.yaml": strings.Replace(giteaGood,
		`{name: build, fake: {log: ["building"], outputs: {digest: "sha256:feed"}}}`, `{name: build, fake: {log: ["building"], exitCode: 2}}`, 1)})
	must(t, err)
	must(t, wt.Push("main"))
	failed := waitStatus(t, g, bad, "failure")
	if !strings.HasPrefix(failed.Description, "build: ") {
		t.Errorf("the bad commit's status: %+v", failed)
	}

	var deliveries struct{ Deliveries []giteaDelivery }
	// Creating and deleting a branch are delivered too (Gitea sends
	// create and delete events, no push, for them) and start nothing.
	_, err = wt.Commit("feature", "a branch", map[string]string{"README": "x"})
	must(t, err)
	must(t, wt.Push("feature"))
	list := func() {
		deliveries.Deliveries = nil // a fresh decode: omitted fields must not keep older values
		eng.api(t, "GET", "/api/v1/deliveries", "ops-token-value", &deliveries)
	}
	waitFor(t, "the feature branch's push to be handled", func() bool {
		list()
		return slices.ContainsFunc(deliveries.Deliveries, func(d giteaDelivery) bool { return d.Ref == "refs/heads/feature" && d.Status != "received" })
	})
	// A tag push is delivered as a push of refs/tags/… (with a create
	// event): recorded, and it starts only pipelines that ask for tags —
	// this one asks for main, and the delivery says so.
	must(t, wt.Tag("v1.0.0"))
	must(t, wt.Push("refs/tags/v1.0.0"))
	waitFor(t, "the tag push to be handled", func() bool {
		list()
		return slices.ContainsFunc(deliveries.Deliveries, func(d giteaDelivery) bool {
			return d.Event == "tag" && d.Ref == "refs/tags/v1.0.0" && d.Status == "processed" && len(d.runs()) == 0 &&
				strings.Contains(fmt.Sprint(d.Matches), "tag")
		})
	})
	must(t, wt.Push(":feature"))
	defer func() {
		if t.Failed() {
			t.Logf("deliveries: %+v\ngitea log:\n%s", deliveries, g.Log())
		}
	}()
	waitFor(t, "the branch deletion's delivery", func() bool {
		list()
		for _, d := range deliveries.Deliveries {
			if strings.Contains(d.Reason, "delete events") {
				return d.Status == "ignored"
			}
		}
		return false
	})
	waitFor(t, "the recording webhook's delete event", func() bool { return rec.has("delete", "") })

	// Gitea's "Test Delivery" sends a push of main's head that moved
	// nothing (before = after): answered, and nothing started.
	var runsBefore struct{ Runs []struct{ ID int64 } }
	eng.api(t, "GET", "/api/v1/runs", "ops-token-value", &runsBefore)
	must(t, g.TestWebhook(ctx, "shop", "web", r.hook))
	must(t, g.TestWebhook(ctx, "shop", "web", rec.hook))
	waitFor(t, "the test delivery", func() bool {
		list()
		return slices.ContainsFunc(deliveries.Deliveries, func(d giteaDelivery) bool {
			return d.Status == "processed" && strings.Contains(d.Reason, "a test delivery")
		})
	})
	var runsAfter struct{ Runs []struct{ ID int64 } }
	eng.api(t, "GET", "/api/v1/runs", "ops-token-value", &runsAfter)
	if len(runsAfter.Runs) != len(runsBefore.Runs) {
		t.Errorf("the test delivery started a run: %d runs before, %d after", len(runsBefore.Runs), len(runsAfter.Runs))
	}
	waitFor(t, "the recording webhook's test delivery", func() bool { return rec.has("push", triggers.KindPing) })
	rec.check(t)
	for _, d := range deliveries.Deliveries {
		t.Logf("delivery %s: %s %s %s %s — %s", d.ID, d.Event, d.Ref, d.SHA, d.Status, d.Reason)
		if d.Status == "malformed" || d.Status == "rejected" {
			t.Errorf("a delivery Gitea sent was refused: %+v", d)
		}
	}
}

// giteaDelivery is the engine's record of a delivery (GET /api/v1/deliveries).
type giteaDelivery struct {
	ID, Event, Ref, SHA, Status, Reason string
	Matches                             []struct {
		Pipeline string
		RunID    int64 `json:"runId"`
		Reason   string
	}
}

// runs are the runs the delivery started.
func (d giteaDelivery) runs() []int64 {
	var ids []int64
	for _, m := range d.Matches {
		if m.RunID != 0 {
			ids = append(ids, m.RunID)
		}
	}
	return ids
}

// delivered waits for the engine to have handled the delivery of a push
// of sha, and returns its record.
func delivered(t testing.TB, eng *engineProc, sha string) giteaDelivery {
	t.Helper()
	var found giteaDelivery
	eventually.True(t, 30*time.Second, "the delivery of "+sha, func() bool {
		var list struct{ Deliveries []giteaDelivery }
		eng.api(t, "GET", "/api/v1/deliveries?limit=500", "ops-token-value", &list)
		for _, d := range list.Deliveries {
			if d.SHA == sha && d.Status != "received" {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// waitStatus waits (polling every 20 ms, at most a minute) for commit
// sha's newest status to be state ("" for any).
func waitStatus(t testing.TB, g *gitea.Gitea, sha, state string) gitea.Status {
	t.Helper()
	var last []gitea.Status
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		last, err = g.Statuses(context.Background(), "shop", "web", sha)
		must(t, err)
		if len(last) > 0 && (state == "" || last[0].State == state) {
			return last[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("commit %s never became %s; statuses: %+v\ngitea log:\n%s", sha, state, last, g.Log())
	return gitea.Status{}
}

func statesOf(ss []gitea.Status) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.State+" "+s.Description)
	}
	return strings.Join(out, "; ")
}

// From `git push` returning to the run's first status on the commit, over
// a real Gitea: when the engine received the webhook, when the run
// started, when Gitea showed pending and then success — p50 and max over
// 5 pushes (a two-stage pipeline read from the repository).
func BenchmarkGiteaPushToStatus(b *testing.B) {
	r := newGiteaRelease(b)
	for b.Loop() {
		phases := map[string][]time.Duration{}
		for i := range 5 {
			sha, err := r.wt.Commit("main", fmt.Sprintf("change %d", i), map[string]string{".slipway/pipeline.yaml": giteaGood, "n": fmt.Sprint(time.Now().UnixNano())})
			must(b, err)
			pushed := time.Now()
			must(b, r.wt.Push("main"))
			returned := time.Now()
			waitStatus(b, r.g, sha, "")
			pending := time.Now()
			waitStatus(b, r.g, sha, "success")
			success := time.Now()
			var runs struct {
				Runs []struct {
					Trigger   struct{ SHA string }
					CreatedAt time.Time
					StartedAt *time.Time
				}
			}
			r.eng.api(b, "GET", "/api/v1/runs?limit=5", "ops-token-value", &runs)
			for _, run := range runs.Runs {
				if run.Trigger.SHA == sha && run.StartedAt != nil {
					phases["queued"] = append(phases["queued"], run.CreatedAt.Sub(returned))
					phases["started"] = append(phases["started"], run.StartedAt.Sub(returned))
				}
			}
			phases["push"] = append(phases["push"], returned.Sub(pushed))
			phases["pending"] = append(phases["pending"], pending.Sub(returned))
			phases["success"] = append(phases["success"], success.Sub(returned))
		}
		benchreport.Phases(b, "after git push returned", phases, "push", "queued", "started", "pending", "success")
	}
}

// recorder is a second webhook of shop/web: every delivery Gitea sends,
// as sent. With SLIPWAY_RECORD_GITEA=DIR they are written there as
// fixtures (gitea-real-EVENT-N.json; triggers/testdata keeps a chosen
// few, renamed) for the intake's unit tests.
type recorder struct {
	hook       int64
	mu         sync.Mutex
	deliveries []recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func recordDeliveries(t *testing.T, g *gitea.Gitea) *recorder {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rec.mu.Lock()
		rec.deliveries = append(rec.deliveries, recorded{r.Header.Clone(), body})
		rec.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	var err error
	rec.hook, err = g.AddWebhook(context.Background(), "shop", "web", srv.URL, "recorder-secret", "push", "create", "delete")
	must(t, err)
	return rec
}

// has reports whether an event of this name, of this kind as the intake
// reads it ("" for any), was recorded.
func (rec *recorder) has(event, kind string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.ContainsFunc(rec.deliveries, func(d recorded) bool {
		if d.header.Get("X-Gitea-Event") != event {
			return false
		}
		ev, err := triggers.Gitea{}.Parse(d.header, d.body)
		return kind == "" || err == nil && ev.Kind == kind
	})
}

// check parses every recorded delivery as the intake does (signature
// first), and writes them out when asked.
func (rec *recorder) check(t *testing.T) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.deliveries) == 0 {
		t.Error("the recording webhook received nothing")
	}
	dir := os.Getenv("SLIPWAY_RECORD_GITEA")
	seen := map[string]int{}
	for _, d := range rec.deliveries {
		event := d.header.Get("X-Gitea-Event")
		if !triggers.Verify(triggers.Gitea{}, d.header, d.body, "recorder-secret") {
			t.Errorf("Gitea's %s delivery does not verify: %v", event, d.header)
		}
		ev, err := triggers.Gitea{}.Parse(d.header, d.body)
		if err != nil {
			t.Errorf("Gitea's %s delivery does not parse: %v\n%s", event, err, d.body)
			continue
		}
		seen[event]++
		if dir != "" {
			name := filepath.Join(dir, fmt.Sprintf("gitea-real-%s-%d.json", event, seen[event]))
			must(t, os.WriteFile(name, d.body, 0o644))
			t.Logf("recorded %s (%s %s)", name, ev.Kind, ev.Ref)
		}
	}
}
