package forgestatus

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// memRuns is runs in memory, with the log lines the reporter writes.
type memRuns struct {
	mu     sync.Mutex
	runs   map[int64]*store.Run
	stages map[int64][]*store.Stage
	log    []string
}

func (m *memRuns) GetRun(_ context.Context, id int64) (*store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %d: %w", id, store.ErrNotFound)
	}
	c := *r
	return &c, nil
}

func (m *memRuns) ListStages(_ context.Context, id int64) ([]*store.Stage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stages[id], nil
}

func (m *memRuns) AppendLogs(_ context.Context, lines []store.LogLine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range lines {
		m.log = append(m.log, l.Stage+": "+l.Text)
	}
	return nil
}

func (m *memRuns) set(id int64, status store.RunStatus, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.runs[id]
	r.Status, r.Reason = status, reason
}

func (m *memRuns) lines() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.log, "\n")
}

const repoURL = "https://forge.example/acme/shop.git"

func newRuns() *memRuns {
	now := time.Now()
	return &memRuns{runs: map[int64]*store.Run{
		7: {ID: 7, Pipeline: "order-service", Status: store.RunQueued, Trigger: store.Trigger{Event: "push", Repo: repoURL, SHA: sample.SHA},
			StartedAt: now.Add(-95 * time.Second), FinishedAt: now},
		8: {ID: 8, Pipeline: "order-service", Status: store.RunQueued, Trigger: store.Trigger{Event: "manual", Repo: repoURL}}, // no commit
		9: {ID: 9, Pipeline: "other", Status: store.RunQueued, Trigger: store.Trigger{Event: "push", Repo: "https://elsewhere.example/a/b", SHA: sample.SHA}},
	}, stages: map[int64][]*store.Stage{7: {
		{Name: "build", Status: store.StageSucceeded},
		{Name: "release", Status: store.StagePending},
	}}}
}

// reporter is a Reporter of runs on a forge at srv, retrying fast.
func reporter(t *testing.T, runs *memRuns, forge, api string, counts *sync.Map) *Reporter {
	t.Helper()
	f, err := New(forge, repoURL, api, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return NewReporter(runs, map[string]Forge{repoURL: f}, "https://slipway.example/", Options{Backoff: 10 * time.Millisecond, MaxWait: 3 * time.Second,
		Count: func(forge, result string) {
			n, _ := counts.LoadOrStore(forge+" "+result, new(int))
			*n.(*int)++
		}})
}

// A run's life on the forge: queued → running a stage → promoted, each
// once, in order; runs of no commit or of other repositories say nothing.
func TestARunsLifeOnItsCommit(t *testing.T) {
	t.Parallel()
	srv, got := forgeServer(t)
	runs := newRuns()
	var counts sync.Map
	r := reporter(t, runs, "gitea", srv.URL, &counts)
	ctx := context.Background()
	r.report(ctx, 7)
	r.report(ctx, 8)
	r.report(ctx, 9)
	runs.set(7, store.RunRunning, "")
	runs.stages[7][1].Status = store.StageRunning
	r.report(ctx, 7)
	r.report(ctx, 7) // nothing changed: nothing sent
	runs.set(7, store.RunSucceeded, "")
	runs.stages[7][1].Status, runs.stages[7][1].Outputs = store.StageSucceeded, map[string]string{"outcome": "promoted", "weight": "100"}
	r.report(ctx, 7)
	var said []string
	for _, c := range *got {
		said = append(said, c.body["state"]+" "+c.body["description"])
	}
	want := []string{"pending queued", "pending running release (stage 2 of 2)", "success canary promoted to 100 %, in 1m35s"}
	if strings.Join(said, "|") != strings.Join(want, "|") {
		t.Errorf("statuses posted:\n%s\nwant\n%s", strings.Join(said, "\n"), strings.Join(want, "\n"))
	}
	if c := (*got)[0]; c.body["target_url"] != "https://slipway.example/runs/7" || c.body["context"] != "slipway/order-service" {
		t.Errorf("first status: %v", c.body)
	}
	if log := runs.lines(); !strings.Contains(log, "status: commit status: slipway/order-service success on gitea: canary promoted") {
		t.Errorf("run log:\n%s", log)
	}
	if n, _ := counts.Load("gitea ok"); *n.(*int) != 3 {
		t.Errorf("counted ok %d", *n.(*int))
	}
}

// Rate limits are waited out as the forge asks (Retry-After; GitHub's
// 403 with X-RateLimit-Remaining 0 and a reset time; GitLab's 429 with
// RateLimit-Reset), server errors retried with backoff, and a refusal
// (401) is not retried: it is written into the run's log and counted.
func TestRetriesAndRateLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name, forge string
		answers     []func(w http.ResponseWriter)
		requests    int
		result      string
		logged      string
	}{
		{"Retry-After", "github", []func(w http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}}, 2, "ok", "github answered HTTP 429 (rate limited); retrying in 1s"},
		{"GitHub primary limit", "github", []func(w http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", fmt.Sprint(time.Now().Add(1500*time.Millisecond).Unix()))
			w.WriteHeader(http.StatusForbidden)
		}}, 2, "ok", "HTTP 403 (rate limited)"},
		{"GitLab limit", "gitlab", []func(w http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("RateLimit-Reset", fmt.Sprint(time.Now().Add(time.Second).Unix()))
			w.WriteHeader(http.StatusTooManyRequests)
		}}, 2, "ok", "HTTP 429 (rate limited)"},
		{"server errors", "gitea", []func(w http.ResponseWriter){
			func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) },
			func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
		}, 3, "ok", "HTTP 503; retrying in 20ms"},
		{"refused", "github", []func(w http.ResponseWriter){func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
		}}, 1, "failed", `could not tell github that slipway/order-service is pending: refused: HTTP 401: {"message":"Bad credentials"}`},
		{"a wait too long", "github", []func(w http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
		}}, 1, "failed", "the forge asks to wait 1h0m0s, more than 3s"},
		{"always down", "gitea", []func(w http.ResponseWriter){
			func(w http.ResponseWriter) { w.WriteHeader(500) }, func(w http.ResponseWriter) { w.WriteHeader(500) },
			func(w http.ResponseWriter) { w.WriteHeader(500) }, func(w http.ResponseWriter) { w.WriteHeader(500) },
			func(w http.ResponseWriter) { w.WriteHeader(500) },
		}, 5, "failed", "could not tell gitea that slipway/order-service is pending: HTTP 500"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := forgeServer(t, tt.answers...)
			runs := newRuns()
			var counts sync.Map
			reporter(t, runs, tt.forge, srv.URL, &counts).report(ctx, 7)
			if len(*got) != tt.requests {
				t.Errorf("%d requests, want %d", len(*got), tt.requests)
			}
			if _, ok := counts.Load(tt.forge + " " + tt.result); !ok {
				t.Errorf("not counted %s", tt.result)
			}
			if log := runs.lines(); !strings.Contains(log, tt.logged) {
				t.Errorf("run log:\n%s\nwant %q", log, tt.logged)
			}
		})
	}
}

// A run that moves on while its report is being retried is reported as
// it is now: the stale state is dropped, not posted late.
func TestARunThatMovedOnIsReportedAsItIsNow(t *testing.T) {
	t.Parallel()
	runs := newRuns()
	var r *Reporter
	srv, got := forgeServer(t, func(w http.ResponseWriter) {
		runs.set(7, store.RunFailed, "stage release failed: rolled back:\nsuccess-rate 72.7 % < min 99 at 10 %")
		r.RunChanged(7)
		w.WriteHeader(http.StatusBadGateway)
	})
	var counts sync.Map
	r = reporter(t, runs, "github", srv.URL, &counts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.RunChanged(7)
	deadline := time.Now().Add(10 * time.Second)
	for len(runs.lines()) == 0 || !strings.Contains(runs.lines(), "failure") {
		if time.Now().After(deadline) {
			t.Fatalf("no failure reported; log:\n%s", runs.lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if len(*got) != 2 || (*got)[1].body["state"] != "failure" || (*got)[1].body["description"] != "release: rolled back: success-rate 72.7 % < min 99 at 10 %" {
		t.Errorf("requests: %+v", *got)
	}
}

// Descriptions are one line of at most 140 characters, whatever a run's
// reason holds.
func TestDescriptionsFitTheForges(t *testing.T) {
	t.Parallel()
	run := &store.Run{ID: 1, Pipeline: "p", Status: store.RunFailed, Reason: strings.Repeat("é\n\t<script>", 100)}
	d := Describe(run, nil, "").Description
	if n := len([]rune(d)); n != maxDescription || strings.ContainsAny(d, "\n\t") || !strings.HasSuffix(d, "…") {
		t.Errorf("description of %d runes: %q", n, d)
	}
	run.Status, run.Reason = store.RunCancelled, "superseded by run 2"
	if s := Describe(run, nil, "https://x"); s.State != Error || s.Description != "cancelled: superseded by run 2" || s.TargetURL != "https://x/runs/1" {
		t.Errorf("cancelled: %+v", s)
	}
}
