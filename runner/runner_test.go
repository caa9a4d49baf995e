package runner

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayci/slipway/runner/store"
)

func TestRunPassesOutputsAndFollowsTheLifecycle(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.runOne(t, parse(t, `
stages:
  - name: build
    fake: {log: ["building {{ .Run.ShortSHA }}"], outputs: {digest: "sha256:feed"}}
  - name: deploy
    fake: {log: ["deploying {{ .Stages.build.digest }} of {{ .App }}"]}
`))
	if run.Status != store.RunSucceeded || run.StartedAt.IsZero() || run.FinishedAt.IsZero() {
		t.Fatalf("run = %+v", run)
	}
	rows := e.stageRows(t, run.ID)
	if statuses(rows) != "succeeded,succeeded" || rows[0].Outputs["digest"] != "sha256:feed" || rows[0].Attempts != 1 {
		t.Errorf("stages = %s %+v", statuses(rows), rows[0])
	}
	logs := e.logText(t, run.ID)
	for _, want := range []string{"build: building 0123456\n", "deploy: deploying sha256:feed of shop\n", "fake: cleaned up after attempt 1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	want := []string{"build#1:Validate", "build#1:Run", "build#1:Run returned", "build#1:Cleanup",
		"deploy#1:Validate", "deploy#1:Run", "deploy#1:Run returned", "deploy#1:Cleanup"}
	// Validate is recorded before Run names the stage, so compare methods only.
	var got []string
	for _, c := range e.rec.Calls() {
		got = append(got, c[strings.Index(c, ":")+1:])
	}
	var wantMethods []string
	for _, c := range want {
		wantMethods = append(wantMethods, c[strings.Index(c, ":")+1:])
	}
	if !slices.Equal(got, wantMethods) {
		t.Errorf("lifecycle calls = %v, want %v", got, wantMethods)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name, stage  string
		wantRun      store.RunStatus
		wantAttempts int
		wantReason   string
	}{
		{"retryable failures within the budget", `{name: s, retries: 2, fake: {failOnAttempts: [1, 2], retryable: true}}`, store.RunSucceeded, 3, ""},
		{"retryable failures beyond the budget", `{name: s, retries: 1, fake: {failOnAttempts: [1, 2], retryable: true}}`, store.RunFailed, 2, "stage s failed: fake stage failed on attempt 2, as scripted"},
		{"a non-retryable failure is final", `{name: s, retries: 5, fake: {exitCode: 3}}`, store.RunFailed, 1, "stage s failed: fake stage exited with code 3"},
		{"a timeout is retried", `{name: s, retries: 1, timeout: 20ms, fake: {sleep: 1m, sleepAttempts: [1]}}`, store.RunSucceeded, 2, ""},
		{"timeouts beyond the budget", `{name: s, retries: 1, timeout: 20ms, fake: {sleep: 1m}}`, store.RunFailed, 2, "stage s failed: stage timed out after 20ms: fake stage interrupted while sleeping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t)
			run := e.runOne(t, parse(t, "stages:\n  - "+tt.stage+"\n"))
			if run.Status != tt.wantRun || !strings.HasPrefix(run.Reason, tt.wantReason) {
				t.Errorf("run ended %s %q, want %s %q", run.Status, run.Reason, tt.wantRun, tt.wantReason)
			}
			atts, _ := e.store.ListAttempts(context.Background(), run.ID)
			if len(atts) != tt.wantAttempts {
				t.Errorf("%d attempts, want %d: %+v", len(atts), tt.wantAttempts, atts)
			}
			if n := strings.Count(e.logText(t, run.ID), "fake: cleaned up"); n != tt.wantAttempts {
				t.Errorf("cleanup ran %d times for %d attempts", n, tt.wantAttempts)
			}
		})
	}
}

func TestFailedStageSkipsTheRest(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.runOne(t, parse(t, `
stages:
  - {name: a, fake: {}}
  - {name: b, fake: {exitCode: 1}}
  - {name: c, fake: {}}
`))
	rows := e.stageRows(t, run.ID)
	if run.Status != store.RunFailed || statuses(rows) != "succeeded,failed,skipped" || rows[2].Error != "not run: the run failed" {
		t.Errorf("run %s, stages %s, c: %q", run.Status, statuses(rows), rows[2].Error)
	}
}

func TestWhenSkipsAStage(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.runOne(t, parse(t, `
stages:
  - {name: a, when: {branches: [release/*]}, fake: {}}
  - {name: b, when: {events: [manual]}, fake: {}}
`))
	rows := e.stageRows(t, run.ID)
	if run.Status != store.RunSucceeded || statuses(rows) != "skipped,succeeded" || !strings.Contains(rows[0].Error, `branch "main"`) {
		t.Errorf("run %s, stages %s, a: %q", run.Status, statuses(rows), rows[0].Error)
	}
}

func TestSecretsAreMaskedInEveryForm(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t/t0ken+value"
	e := newEngine(t, WithLookupEnv(func(name string) (string, bool) {
		return secret, name == "TEST_TOKEN"
	}))
	p := parse(t, `
secrets: {TOKEN: {env: TEST_TOKEN}}
stages:
  - name: leak
    fake:
      log:
        - "plain {{ .Secrets.TOKEN }}"
        - "base64 `+base64.StdEncoding.EncodeToString([]byte(secret))+`"
        - "url `+url.QueryEscape(secret)+`"
        - "path `+url.PathEscape(secret)+`"
      exitCode: 1
`)
	run := e.runOne(t, p)
	logs := e.logText(t, run.ID)
	if strings.Contains(logs, "s3cr3t") || strings.Contains(logs, base64.StdEncoding.EncodeToString([]byte(secret))) || strings.Contains(logs, url.QueryEscape(secret)) {
		t.Errorf("a secret form leaked into the log:\n%s", logs)
	}
	if strings.Count(logs, Masked) != 4 {
		t.Errorf("want 4 masked values, log:\n%s", logs)
	}
}

func TestMissingSecretFailsBeforeAnyStage(t *testing.T) {
	t.Parallel()
	e := newEngine(t, WithLookupEnv(func(string) (string, bool) { return "", false }))
	run := e.runOne(t, parse(t, "secrets: {TOKEN: {env: NOT_SET_ANYWHERE}}\nstages:\n  - {name: a, fake: {}}\n"))
	if run.Status != store.RunFailed || run.Reason != "secret TOKEN: environment variable NOT_SET_ANYWHERE is not set" {
		t.Errorf("run ended %s %q", run.Status, run.Reason)
	}
	if statuses(e.stageRows(t, run.ID)) != "skipped" || len(e.rec.Calls()) != 0 {
		t.Error("a stage ran although a secret was missing")
	}
}

func TestUnknownKindFailsTheRunNamingIt(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.runOne(t, parse(t, "stages:\n  - {name: b, build: {image: reg/x}}\n"))
	if run.Status != store.RunFailed || !strings.Contains(run.Reason, `stage kind "build" is not available in this engine (available: fake)`) {
		t.Errorf("run ended %s %q", run.Status, run.Reason)
	}
}

func TestFollowStreamsUntilTheRunEnds(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.submit(t, parse(t, `
stages:
  - {name: a, fake: {log: [one, two]}}
  - {name: b, fake: {log: [three], sleep: 50ms}}
`))
	done := make(chan error, 1)
	var got []string
	go func() {
		done <- e.Follow(context.Background(), run.ID, 0, func(l store.LogLine) error {
			got = append(got, l.Text)
			return nil
		})
	}()
	e.drain(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two", "fake: cleaned up after attempt 1", "three", "fake: cleaned up after attempt 1"}
	if !slices.Equal(got, want) {
		t.Errorf("followed %q, want %q", got, want)
	}
}

func TestMasker(t *testing.T) {
	t.Parallel()
	m := newMasker([]string{"hunter22", "-----BEGIN KEY-----\nAAAAline2\n-----END KEY-----\n", "", "  "})
	tests := map[string]string{
		"password=hunter22":   "password=***",
		"aHVudGVyMjI=":        "***",
		"AAAAline2":           "***",
		"nothing secret here": "nothing secret here",
		base64.RawURLEncoding.EncodeToString([]byte("hunter22")): "***",
	}
	for in, want := range tests {
		if got := m.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	var nilMasker *masker
	if nilMasker.Mask("x") != "x" {
		t.Error("nil masker changed text")
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	t.Parallel()
	r := &Runner{opts: options{backoffBase: 100, backoffMax: 1000}}
	var got []int64
	for k := 1; k <= 6; k++ {
		got = append(got, int64(r.backoff(k)))
	}
	if want := []int64{100, 200, 400, 800, 1000, 1000}; !slices.Equal(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
}

func TestSubmitWithDedupKeyIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	p := parse(t, "stages:\n  - {name: a, fake: {}}\n")
	req := Request{Pipeline: p, Trigger: manual, DedupKey: "github/delivery-1/shop"}
	first, created, err := e.Submit(context.Background(), req)
	if err != nil || !created {
		t.Fatalf("first submit: %v %v", created, err)
	}
	again, created, err := e.Submit(context.Background(), req)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("second submit: run %v created %v err %v, want run %d not created", again, created, err, first.ID)
	}
	e.drain(t)
	if runs, _ := e.store.ListRuns(context.Background(), store.RunFilter{}); len(runs) != 1 {
		t.Errorf("%d runs, want 1", len(runs))
	}
}

// A pipeline naming a kind this engine lacks is recorded as a failed run
// that says so, before any stage runs — never accepted and failed later.
func TestRunOfAKindTheEngineLacksIsRefused(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	run := e.runOne(t, parse(t, "stages:\n  - {name: c, clone: {}}\n  - {name: f, fake: {}}\n"))
	want := `refused: stages[0] (c): stage kind "clone" is not available in this engine (available: fake)`
	if run.Status != store.RunFailed || run.Reason != want {
		t.Errorf("run %s %q, want failed %q", run.Status, run.Reason, want)
	}
	for _, st := range e.stageRows(t, run.ID) {
		if st.Status == store.StageSucceeded || st.Status == store.StageRunning {
			t.Errorf("stage %s ran: %s", st.Name, st.Status)
		}
	}
}

// Whoever asked hears of each change of a run: queued, started, each
// stage begun and ended, the end — reading the store then sees it.
func TestRunChangesAreTold(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	var e *testEngine
	e = newEngine(t, WithRunChanged(func(id int64) {
		run, err := e.Store().GetRun(context.Background(), id)
		if err != nil {
			t.Error(err)
			return
		}
		rows, _ := e.Store().ListStages(context.Background(), id)
		mu.Lock()
		seen = append(seen, string(run.Status)+" "+statuses(rows))
		mu.Unlock()
	}))
	run := e.runOne(t, parse(t, "stages:\n  - {name: a, fake: {}}\n  - {name: b, fake: {}}\n"))
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(slices.Compact(seen), "\n")
	want := strings.Join([]string{
		"queued pending,pending",
		"running pending,pending",
		"running running,pending",
		"running succeeded,pending",
		"running succeeded,running",
		"running succeeded,succeeded",
		"succeeded succeeded,succeeded",
	}, "\n")
	if run.Status != store.RunSucceeded || got != want {
		t.Errorf("changes told:\n%s\nwant\n%s", got, want)
	}
}
