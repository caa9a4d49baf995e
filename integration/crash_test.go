package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
)

const crashPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: crashy}
stages:
  - name: first
    fake: {log: [first done], outputs: {digest: "sha256:abc"}}
  - name: slow
    fake: {log: ["slow sees {{ .Stages.first.digest }}"], sleep: 1m, sleepAttempts: [%s]}
`

// engine is one slipway process on a data directory.
type engine struct {
	cmd    *exec.Cmd
	out    syncBuffer
	waited chan error
}

// syncBuffer is a bytes.Buffer the process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSlipway(t testing.TB, args ...string) *engine {
	t.Helper()
	return startSlipwayEnv(t, nil, args...)
}

// startSlipwayEnv is startSlipway with more environment variables.
func startSlipwayEnv(t testing.TB, env []string, args ...string) *engine {
	t.Helper()
	e := &engine{cmd: exec.Command(slipwayBin, args...), waited: make(chan error, 1)}
	e.cmd.Env = append(os.Environ(), env...)
	e.cmd.Stdout, e.cmd.Stderr = &e.out, &e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.waited <- e.cmd.Wait() }()
	t.Cleanup(func() { e.cmd.Process.Kill() })
	return e
}

// waitExit waits (bounded) for the process and returns its exit code.
func (e *engine) waitExit(t testing.TB) int {
	t.Helper()
	select {
	case <-e.waited:
		return e.cmd.ProcessState.ExitCode()
	case <-time.After(2 * time.Minute):
		t.Fatalf("slipway did not exit; output:\n%s", e.out.String())
		return -1
	}
}

func openStore(t testing.TB, data string) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(data, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitAttemptRunning polls the database (bounded) until attempt n of
// stage index of run 1 is running, while the process is alive.
func waitAttemptRunning(t *testing.T, data string, e *engine, index, n int) {
	t.Helper()
	err := eventually.Within(time.Minute, func() bool {
		select {
		case <-e.waited:
			t.Fatalf("slipway exited early:\n%s", e.out.String())
		default:
		}
		if _, err := os.Stat(filepath.Join(data, "slipway.db")); err != nil {
			return false
		}
		st := openStore(t, data)
		atts, _ := st.ListAttempts(context.Background(), 1)
		st.Close()
		return slices.ContainsFunc(atts, func(a *store.Attempt) bool {
			return a.Index == index && a.Attempt == n && a.Status == store.StageRunning
		})
	})
	if err != nil {
		t.Fatalf("attempt %d of stage %d never ran (%v); output:\n%s", n, index, err, e.out.String())
	}
}

// killHard kills the process with SIGKILL: no cleanup, no shutdown path.
func (e *engine) killHard(t *testing.T) {
	t.Helper()
	if err := e.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-e.waited
}

func writeFile(t testing.TB, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A slipway process killed with SIGKILL in the middle of a stage leaves its
// run "running"; the next engine on the same data resumes it at that stage,
// without re-running the stage that had succeeded.
func TestKilledEngineRunIsResumedByTheNextEngine(t *testing.T) {
	offNode(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := writeFile(t, dir, "p.yaml", strings.Replace(crashPipeline, "%s", "1", 1))

	first := startSlipway(t, "run", file, "--data", data)
	waitAttemptRunning(t, data, first, 1, 1)
	first.killHard(t)

	st := openStore(t, data)
	stuck, err := st.GetRun(context.Background(), 1)
	st.Close()
	if err != nil || stuck.Status != store.RunRunning {
		t.Fatalf("after SIGKILL the run should be left running: %+v %v", stuck, err)
	}

	second := startSlipway(t, "recover", "--data", data)
	if code := second.waitExit(t); code != 0 {
		t.Fatalf("resume exited %d:\n%s", code, second.out.String())
	}
	out := second.out.String()
	if !strings.Contains(out, "1 run(s) resumed, 0 failed") || !strings.Contains(out, "run 1 of crashy: SUCCEEDED") {
		t.Errorf("resume output:\n%s", out)
	}

	st = openStore(t, data)
	defer st.Close()
	ctx := context.Background()
	atts, _ := st.ListAttempts(ctx, 1)
	var got []string
	for _, a := range atts {
		got = append(got, strings.Join([]string{strconv.Itoa(a.Index), strconv.Itoa(a.Attempt), string(a.Status), a.Error}, "/"))
	}
	want := []string{"0/1/succeeded/", "1/1/interrupted/" + runner.ReasonEngineRestarted, "1/2/succeeded/"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("attempts = %v, want %v", got, want)
	}
	lines, _ := st.ReadLogs(ctx, 1, 0, 100)
	var text []string
	for _, l := range lines {
		text = append(text, l.Text)
	}
	if strings.Count(strings.Join(text, "\n"), "first done") != 1 || !strings.Contains(strings.Join(text, "\n"), "slow sees sha256:abc") {
		t.Errorf("logs after resume:\n%s", strings.Join(text, "\n"))
	}
}

// An engine that keeps dying during the same stage does not resume the run
// forever: after the allowed resumes it is failed with "engine restarted".
func TestRunThatKeepsKillingTheEngineIsFailed(t *testing.T) {
	offNode(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := writeFile(t, dir, "p.yaml", strings.Replace(crashPipeline, "%s", "1, 2, 3, 4, 5", 1))

	e := startSlipway(t, "run", file, "--data", data)
	for attempt := 1; attempt <= 4; attempt++ {
		waitAttemptRunning(t, data, e, 1, attempt)
		e.killHard(t)
		e = startSlipway(t, "recover", "--data", data)
	}
	if code := e.waitExit(t); code != 0 {
		t.Fatalf("final resume exited %d:\n%s", code, e.out.String())
	}
	if !strings.Contains(e.out.String(), "0 run(s) resumed, 1 failed") {
		t.Errorf("final resume output:\n%s", e.out.String())
	}
	st := openStore(t, data)
	defer st.Close()
	run, _ := st.GetRun(context.Background(), 1)
	if run.Status != store.RunFailed || !strings.HasPrefix(run.Reason, runner.ReasonEngineRestarted+" during stage slow (attempt 4), after 3 resumes") {
		t.Errorf("run = %s %q", run.Status, run.Reason)
	}
	if running, _ := st.ListRuns(context.Background(), store.RunFilter{Status: []store.RunStatus{store.RunRunning, store.RunQueued}}); len(running) != 0 {
		t.Errorf("%d runs left running or queued", len(running))
	}
}
