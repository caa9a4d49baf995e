package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/fake"
)

// testEngine is a runner over a real temporary SQLite store with the fake
// kind, whose Recorder referees the stage lifecycle.
type testEngine struct {
	*Runner
	rec  *fake.Recorder
	path string
}

func newEngine(t *testing.T, opts ...Option) *testEngine {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slipway.db")
	return openEngine(t, path, opts...)
}

func openEngine(t *testing.T, path string, opts ...Option) *testEngine {
	t.Helper()
	st, err := sqlstore.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := engineOn(t, st, opts...)
	e.path = path
	return e
}

// engineOn is a test engine on st.
func engineOn(t *testing.T, st store.Store, opts ...Option) *testEngine {
	t.Helper()
	rec := &fake.Recorder{}
	kinds := stages.NewRegistry()
	if err := kinds.Register("fake", fake.New(rec)); err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithRetryBackoff(time.Millisecond, 5*time.Millisecond), WithWorkRoot(t.TempDir())}, opts...)
	r, err := New(st, kinds, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := rec.Violations(); len(v) > 0 {
			t.Errorf("stage lifecycle contract broken by the runner: %v", v)
		}
	})
	return &testEngine{Runner: r, rec: rec}
}

// parse builds a pipeline from the part of a file after its header.
func parse(t *testing.T, rest string) *pipeline.Pipeline {
	t.Helper()
	return parseB(t, "apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\n"+rest)
}

func parseB(t testing.TB, src string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("test pipeline does not validate:\n%v", err)
	}
	return p
}

var manual = store.Trigger{Event: "manual", Ref: "refs/heads/main", SHA: "0123456789abcdef", Actor: "test"}

func (e *testEngine) submit(t *testing.T, p *pipeline.Pipeline) *store.Run {
	t.Helper()
	run, _, err := e.Submit(context.Background(), Request{Pipeline: p, Trigger: manual})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// runOne submits p and drains the queue, returning the finished run.
func (e *testEngine) runOne(t *testing.T, p *pipeline.Pipeline) *store.Run {
	t.Helper()
	run := e.submit(t, p)
	e.drain(t)
	return e.get(t, run.ID)
}

func (e *testEngine) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *testEngine) get(t *testing.T, id int64) *store.Run {
	t.Helper()
	run, err := e.store.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func (e *testEngine) stageRows(t *testing.T, id int64) []*store.Stage {
	t.Helper()
	rows, err := e.store.ListStages(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (e *testEngine) logText(t *testing.T, id int64) string {
	t.Helper()
	lines, err := e.store.ReadLogs(context.Background(), id, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Stage + ": " + l.Text + "\n")
	}
	return b.String()
}

// waitFor polls cond (reading the store) until it holds; it is bounded.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually.True(t, 5*time.Second, what, cond)
}

func statuses(rows []*store.Stage) string {
	s := make([]string, len(rows))
	for i, r := range rows {
		s[i] = string(r.Status)
	}
	return strings.Join(s, ",")
}
