package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// serve runs the engine in the background until the test ends.
func (e *testEngine) serve(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Serve(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func (e *testEngine) waitStatus(t *testing.T, id int64, want store.RunStatus) *store.Run {
	t.Helper()
	var run *store.Run
	waitFor(t, "run to be "+string(want), func() bool {
		run = e.get(t, id)
		return run.Status == want
	})
	return run
}

func (e *testEngine) waitStage(t *testing.T, id int64, i int, want store.StageStatus) {
	t.Helper()
	waitFor(t, "stage to be "+string(want), func() bool { return e.stageRows(t, id)[i].Status == want })
}

func TestCancelRunningRunCleansUpAndSkipsTheRest(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.serve(t)
	run := e.submit(t, parse(t, "stages:\n  - {name: slow, fake: {sleep: 1m}}\n  - {name: after, fake: {}}\n"))
	e.waitStage(t, run.ID, 0, store.StageRunning)
	if err := e.Cancel(context.Background(), run.ID, "by test"); err != nil {
		t.Fatal(err)
	}
	got := e.waitStatus(t, run.ID, store.RunCancelled)
	if got.Reason != "by test" {
		t.Errorf("reason = %q", got.Reason)
	}
	if s := statuses(e.stageRows(t, run.ID)); s != "cancelled,skipped" {
		t.Errorf("stages = %s", s)
	}
	if !strings.Contains(e.logText(t, run.ID), "fake: cleaned up after attempt 1") {
		t.Error("cleanup did not run after cancellation")
	}
	if err := e.Cancel(context.Background(), run.ID, "again"); !errors.Is(err, ErrFinished) {
		t.Errorf("cancelling a finished run: %v", err)
	}
}

func TestCancelQueuedRun(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.submit(t, parse(t, "stages:\n  - {name: a, fake: {}}\n"))
	if err := e.Cancel(context.Background(), run.ID, "not needed"); err != nil {
		t.Fatal(err)
	}
	e.drain(t)
	got := e.get(t, run.ID)
	if got.Status != store.RunCancelled || got.Reason != "not needed" || len(e.rec.Calls()) != 0 {
		t.Errorf("run = %s %q, calls %v", got.Status, got.Reason, e.rec.Calls())
	}
}

func TestQueuePolicyRunsAGroupInOrderWithoutCancelling(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	p := parse(t, "concurrency: {group: 'deploy-{{ .App }}'}\nstages:\n  - {name: a, fake: {sleep: 30ms}}\n")
	first, second, third := e.submit(t, p), e.submit(t, p), e.submit(t, p)
	e.drain(t)
	a, b, c := e.get(t, first.ID), e.get(t, second.ID), e.get(t, third.ID)
	for _, r := range []*store.Run{a, b, c} {
		if r.Status != store.RunSucceeded || r.Group != "deploy-shop" {
			t.Fatalf("run %d: %s in group %q", r.ID, r.Status, r.Group)
		}
	}
	if b.StartedAt.Before(a.FinishedAt) || c.StartedAt.Before(b.FinishedAt) {
		t.Errorf("runs of one group overlapped: %v–%v, %v–%v, %v–%v", a.StartedAt, a.FinishedAt, b.StartedAt, b.FinishedAt, c.StartedAt, c.FinishedAt)
	}
}

func TestCancelPreviousPolicySupersedesOlderRuns(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	e.serve(t)
	p := parse(t, "concurrency: {group: 'ci-{{ .Run.Branch }}', policy: cancel-previous}\nstages:\n  - {name: a, fake: {sleep: 1m, sleepAttempts: [1]}}\n")
	old := e.submit(t, p)
	e.waitStage(t, old.ID, 0, store.StageRunning)
	p2 := parse(t, "concurrency: {group: 'ci-{{ .Run.Branch }}', policy: cancel-previous}\nstages:\n  - {name: a, fake: {}}\n")
	newer := e.submit(t, p2)
	got := e.waitStatus(t, old.ID, store.RunCancelled)
	if !strings.Contains(got.Reason, "superseded by run") || !strings.Contains(got.Reason, "ci-main") {
		t.Errorf("old run reason = %q", got.Reason)
	}
	e.waitStatus(t, newer.ID, store.RunSucceeded)
}

func TestShutdownRequeuesAndRestartResumesAtTheStage(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	stop := e.serve(t)
	run := e.submit(t, parse(t, `
stages:
  - {name: first, fake: {outputs: {digest: "sha256:1"}}}
  - {name: second, fake: {sleep: 1m, sleepAttempts: [1], log: ["got {{ .Stages.first.digest }}"]}}
`))
	e.waitStage(t, run.ID, 1, store.StageRunning)
	stop()
	got := e.get(t, run.ID)
	if got.Status != store.RunQueued || !strings.Contains(got.Reason, "engine shutting down during stage second") {
		t.Fatalf("after shutdown: %s %q", got.Status, got.Reason)
	}
	// A new engine on the same database picks it up where it stopped.
	e2 := openEngine(t, e.path)
	e2.drain(t)
	got = e2.get(t, run.ID)
	if got.Status != store.RunSucceeded {
		t.Fatalf("after restart: %s %q", got.Status, got.Reason)
	}
	if calls := e2.rec.Calls(); len(calls) == 0 || strings.Contains(strings.Join(calls, " "), "first#") {
		t.Errorf("the resumed run re-ran a stage that had succeeded: %v", calls)
	}
	atts, _ := e2.store.ListAttempts(context.Background(), run.ID)
	if len(atts) != 3 || atts[1].Status != AttemptInterrupted || atts[2].Attempt != 2 || atts[2].Status != store.StageSucceeded {
		t.Errorf("attempts = %+v", atts)
	}
	if !strings.Contains(e2.logText(t, run.ID), "got sha256:1") {
		t.Error("outputs of the stage done before the restart were not restored")
	}
}

// A crash leaves a run "running" with an attempt "running". Recover must
// resume it, and fail it with "engine restarted" once resumes run out.
func TestRecoverAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEngine(t, WithMaxResumes(1))
	run := e.submit(t, parse(t, "stages:\n  - {name: a, fake: {}}\n"))
	crash := func() {
		claimed, err := e.store.ClaimNext(ctx, run.CreatedAt, store.Lease{})
		if err != nil || claimed == nil || claimed.ID != run.ID {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		n, _, _ := e.pastAttempts(ctx, run.ID, 0)
		if err := e.store.StartAttempt(ctx, run.ID, 0, n+1, run.CreatedAt); err != nil {
			t.Fatal(err)
		}
	}
	crash()
	resumed, failed, err := e.Recover(ctx)
	if err != nil || resumed != 1 || failed != 0 {
		t.Fatalf("Recover = %d, %d, %v", resumed, failed, err)
	}
	if got := e.get(t, run.ID); got.Status != store.RunQueued || got.Reason != "engine restarted during stage a (attempt 1); resuming there" {
		t.Errorf("after first crash: %s %q", got.Status, got.Reason)
	}
	crash()
	resumed, failed, err = e.Recover(ctx)
	if err != nil || resumed != 0 || failed != 1 {
		t.Fatalf("Recover = %d, %d, %v", resumed, failed, err)
	}
	got := e.get(t, run.ID)
	if got.Status != store.RunFailed || !strings.HasPrefix(got.Reason, ReasonEngineRestarted) {
		t.Errorf("after second crash: %s %q", got.Status, got.Reason)
	}
	if running, _ := e.store.ListRuns(ctx, store.RunFilter{Status: []store.RunStatus{store.RunRunning}}); len(running) != 0 {
		t.Errorf("runs still running after Recover: %d", len(running))
	}
}

type panicking struct{}

func (panicking) Validate() error { return nil }
func (panicking) Run(context.Context, *stages.Run) (stages.Result, error) {
	panic("index out of range")
}

func TestPanickingStageFailsTheRunNotTheEngine(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	if err := e.kinds.Register("clone", func(any) (stages.Stage, error) { return panicking{}, nil }); err != nil {
		t.Fatal(err)
	}
	run := e.runOne(t, parse(t, "stages:\n  - {name: c, clone: {}}\n"))
	if run.Status != store.RunFailed || run.Reason != "stage c failed: stage panicked: index out of range" {
		t.Errorf("run ended %s %q", run.Status, run.Reason)
	}
}

// A workdir lasts as long as its run: made by the stage that first
// writes it (none, if no stage does), kept while the run waits to resume,
// removed once it ends, however it ends. A workdir the caller gave is the
// caller's.
func TestWorkdirGoesWithTheRunsEnd(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	e := newEngine(t, WithWorkRoot(root))
	dirOf := func(id int64) string { return filepath.Join(root, strconv.FormatInt(id, 10)) }
	exists := func(dir string) bool { _, err := os.Stat(dir); return err == nil }
	stop := e.serve(t)
	run := e.submit(t, parse(t, `
stages:
  - {name: wait, fake: {sleep: 1m, sleepAttempts: [1]}}
`))
	e.waitStage(t, run.ID, 0, store.StageRunning)
	if exists(dirOf(run.ID)) {
		t.Fatal("a run whose stages wrote nothing has a workdir") // a fake stage makes none
	}
	// what a clone stage would do: make the workdir and check out into it
	if err := os.MkdirAll(dirOf(run.ID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirOf(run.ID), "README"), []byte("checked out"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop()
	if got := e.get(t, run.ID); got.Status != store.RunQueued || !exists(dirOf(run.ID)) {
		t.Fatalf("after shutdown: run %s, workdir kept %t; want queued with its workdir", got.Status, exists(dirOf(run.ID)))
	}
	e2 := openEngine(t, e.path, WithWorkRoot(root))
	e2.drain(t)
	if got := e2.get(t, run.ID); got.Status != store.RunSucceeded || exists(dirOf(run.ID)) {
		t.Errorf("after the resumed run: %s, workdir kept %t; want it removed", got.Status, exists(dirOf(run.ID)))
	}
	failed := e2.runOne(t, parse(t, "stages:\n  - {name: a, fake: {exitCode: 1}}\n"))
	if failed.Status != store.RunFailed || exists(dirOf(failed.ID)) {
		t.Errorf("failed run: %s, workdir kept %t; want it removed", failed.Status, exists(dirOf(failed.ID)))
	}
	own := t.TempDir()
	mine, _, err := e2.Submit(context.Background(), Request{Pipeline: parse(t, "stages:\n  - {name: a, fake: {}}\n"), Trigger: manual, Workdir: own})
	if err != nil {
		t.Fatal(err)
	}
	e2.drain(t)
	if got := e2.get(t, mine.ID); got.Status != store.RunSucceeded || !exists(own) {
		t.Errorf("run with its own workdir: %s, workdir kept %t; want it kept", got.Status, exists(own))
	}
}
