package runner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// A refused request is stored ended, in the statement that creates it: the
// run Submit returns is already failed, its stages skipped, and no stage
// of it starts — there is no moment in which a dispatcher could claim it.
func TestARefusedRunIsStoredEndedAndNeverStarts(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	p := parse(t, "stages:\n  - {name: a, fake: {}}\n  - {name: b, fake: {}}\n")
	run, created, err := e.Submit(context.Background(), Request{Pipeline: p, Trigger: manual, Refused: "secret X is not granted"})
	if err != nil || !created {
		t.Fatalf("Submit = %v, %v", created, err)
	}
	if run.Status != store.RunFailed || run.Reason != "refused: secret X is not granted" {
		t.Errorf("Submit returned run %s %q, want it failed, refused", run.Status, run.Reason)
	}
	if got := e.get(t, run.ID); got.Status != store.RunFailed || got.FinishedAt.IsZero() {
		t.Errorf("stored run %s, finished %v; want failed with its end", got.Status, got.FinishedAt)
	}
	e.drain(t)
	for _, st := range e.stageRows(t, run.ID) {
		if st.Status != store.StageSkipped || st.Attempts != 0 {
			t.Errorf("stage %s %s after %d attempts, want skipped, never tried", st.Name, st.Status, st.Attempts)
		}
	}
	if calls := e.rec.Calls(); len(calls) != 0 {
		t.Errorf("stages of a refused run were called: %v", calls)
	}
}

// admitUntil admits the first n stages it is asked about, then refuses.
type admitUntil struct {
	n     int32
	asked atomic.Int32
}

func (a *admitUntil) Admit(context.Context, *store.Run, *pipeline.Pipeline) string {
	if a.asked.Add(1) > a.n {
		return "secret X is no longer granted to this repository"
	}
	return ""
}

// The runner asks again immediately before each stage: a run admitted at
// intake but refused by the time its second stage would start (the grant
// was revoked) ends with the refusal, and the stage never starts.
func TestEachStageIsAdmittedWhereItStarts(t *testing.T) {
	t.Parallel()
	e := newEngine(t, WithAdmission(&admitUntil{n: 1}))
	run := e.runOne(t, parse(t, "stages:\n  - {name: a, fake: {}}\n  - {name: b, fake: {}}\n"))
	if run.Status != store.RunFailed || run.Reason != "refused: secret X is no longer granted to this repository" {
		t.Errorf("run %s %q, want failed with the refusal", run.Status, run.Reason)
	}
	rows := e.stageRows(t, run.ID)
	if rows[0].Status != store.StageSucceeded || rows[1].Status != store.StageSkipped || rows[1].Attempts != 0 {
		t.Errorf("stages %s (%d attempts), want succeeded then skipped untried", statuses(rows), rows[1].Attempts)
	}
	for _, c := range e.rec.Calls() {
		if strings.HasPrefix(c, "b:") {
			t.Errorf("the refused stage was called: %v", e.rec.Calls())
			break
		}
	}
}

// podsForPushed puts the build and run stages of untrusted runs in Pods.
type podsForPushed struct{ admitAll }

func (podsForPushed) Executor(run *store.Run) string {
	if run.Untrusted {
		return "kubernetes"
	}
	return ""
}

// An admission that is also a Placement decides where the build and run
// stages of a run that name no executor run; a stage that names one keeps
// it (the admission refuses what it must).
func TestThePlacementSetsTheExecutorOfStagesThatNameNone(t *testing.T) {
	t.Parallel()
	e := newEngine(t, WithAdmission(podsForPushed{}))
	seen := make(chan string, 4)
	must(t, e.kinds.Register("run", func(spec any) (stages.Stage, error) {
		seen <- spec.(*pipeline.RunSpec).Executor
		return fakeStage{}, nil
	}))
	body := []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\nstages:\n" +
		"  - {name: a, run: {image: alpine, commands: [make]}}\n  - {name: b, run: {image: alpine, commands: [make], executor: local}}\n")
	pushed, err := pipeline.ParseUntrusted("repo.yaml", body)
	must(t, err)
	operators, err := pipeline.Parse("ops.yaml", body)
	must(t, err)
	for _, tt := range []struct {
		p    *pipeline.Pipeline
		want string
	}{{pushed, "kubernetes local"}, {operators, " local"}} {
		if run := e.runOne(t, tt.p); run.Status != store.RunSucceeded {
			t.Fatalf("run %s: %s", run.Status, run.Reason)
		}
		if got := <-seen + " " + <-seen; got != tt.want {
			t.Errorf("untrusted %v: the stages ran on %q, want %q", tt.p.Untrusted, got, tt.want)
		}
	}
}

type fakeStage struct{}

func (fakeStage) Validate() error { return nil }
func (fakeStage) Run(context.Context, *stages.Run) (stages.Result, error) {
	return stages.Result{}, nil
}

// Hundreds of refused requests, made from three engines on one PostgreSQL
// database whose run slots are all free and whose dispatchers are all
// serving, start zero stage attempts; the admitted runs made among them
// all run, so the dispatchers were there to take anything claimable.
func TestRefusedRunsNeverStartOnSharedEngines(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("several engines on PostgreSQL")
	}
	ctx := context.Background()
	engines := sharedEngines(t, 3)
	for _, e := range engines {
		e.serve(t)
	}
	p := parse(t, "stages:\n  - {name: touch, fake: {}}\n")
	const perEngine, admittedEvery = 100, 10
	var (
		mu       sync.Mutex
		refused  []int64
		admitted []int64
		wg       sync.WaitGroup
	)
	for i, e := range engines {
		wg.Go(func() {
			for j := range perEngine {
				req := Request{Pipeline: p, Trigger: manual, DedupKey: fmt.Sprintf("e%d/%d", i, j)}
				if j%admittedEvery != 0 {
					req.Refused = "clone.repo must be written literally"
				}
				run, _, err := e.Submit(ctx, req)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if req.Refused != "" {
					refused = append(refused, run.ID)
				} else {
					admitted = append(admitted, run.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	a := engines[0]
	eventually.True(t, time.Minute, "every admitted run to succeed", func() bool {
		for _, id := range admitted {
			if a.get(t, id).Status != store.RunSucceeded {
				return false
			}
		}
		return true
	})
	started := 0
	for _, id := range refused {
		atts, err := a.store.ListAttempts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		run := a.get(t, id)
		if len(atts) > 0 || run.Status != store.RunFailed || !run.StartedAt.IsZero() {
			started++
		}
	}
	calls := 0
	for _, e := range engines {
		calls += len(e.rec.Calls())
	}
	if started != 0 {
		t.Errorf("%d of %d refused runs were started", started, len(refused))
	}
	if perAdmitted := calls / len(admitted); calls%len(admitted) != 0 || perAdmitted == 0 {
		t.Errorf("%d stage calls for %d admitted runs: some refused run's stage was called", calls, len(admitted))
	}
	t.Logf("%d refused and %d admitted runs on 3 engines: %d refused runs started, %d stage calls", len(refused), len(admitted), started, calls)
}

// The logs of all of a run's stages together are bounded: once they have
// written the run's share, each later attempt's log says the rest was not
// kept.
func TestARunsLogsAreBoundedTogether(t *testing.T) {
	t.Parallel()
	e := newEngine(t, WithMaxRunLogBytes(1000))
	line := strings.Repeat("x", 300)
	run := e.runOne(t, parse(t, fmt.Sprintf("stages:\n  - {name: a, fake: {log: [%s, %s]}}\n  - {name: b, fake: {log: [%s, %s]}}\n", line, line, line, line)))
	if run.Status != store.RunSucceeded {
		t.Fatalf("run %s %q", run.Status, run.Reason)
	}
	text := e.logText(t, run.ID)
	if strings.Count(text, line) != 3 || !strings.Contains(text, "this run's stages wrote more than 1000 bytes") {
		t.Errorf("the run's log keeps %d lines of 300 bytes; want 3, then the marker:\n%s", strings.Count(text, line), text)
	}
	// An admission that gives the run less (a repository's maxRunLog)
	// holds it to that; more than the engine's cap is the engine's cap.
	for _, tt := range []struct {
		budget int64
		lines  int
		want   string
	}{{500, 1, "more than 500 bytes"}, {5000, 3, "more than 1000 bytes"}} {
		e := newEngine(t, WithMaxRunLogBytes(1000), WithAdmission(logBudget(tt.budget)))
		run := e.runOne(t, parse(t, fmt.Sprintf("stages:\n  - {name: a, fake: {log: [%s, %s]}}\n  - {name: b, fake: {log: [%s, %s]}}\n", line, line, line, line)))
		if text := e.logText(t, run.ID); strings.Count(text, line) != tt.lines || !strings.Contains(text, tt.want) {
			t.Errorf("a budget of %d: %d lines kept; want %d and %q:\n%s", tt.budget, strings.Count(text, line), tt.lines, tt.want, text)
		}
	}
}

// logBudget gives every run the same log budget.
type logBudget int64

func (logBudget) Admit(context.Context, *store.Run, *pipeline.Pipeline) string { return "" }
func (b logBudget) RunLogBytes(*store.Run) int64                               { return int64(b) }
