package runner

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
)

// refusingStore fails every write of attempts' ends while full is set, as
// a full disk does.
type refusingStore struct {
	store.Store
	full atomic.Bool
}

var errDiskFull = errors.New("database or disk is full (13)")

func (s *refusingStore) FinishAttempt(ctx context.Context, id int64, i, n int, st store.StageStatus, e string, o map[string]string, at time.Time) error {
	if s.full.Load() {
		return errDiskFull
	}
	return s.Store.FinishAttempt(ctx, id, i, n, st, e, o, at)
}

// A stage whose end the store refuses has not failed: the engine stops
// the run there, records nothing more, and once the store takes writes
// again resumes it at that stage, which then succeeds.
func TestARunTheStoreRefusedResumesWhenItTakesWrites(t *testing.T) {
	t.Parallel()
	sq, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &refusingStore{Store: sq}
	e := engineOn(t, st)
	st.full.Store(true)
	run := e.submit(t, parse(t, "stages:\n  - {name: build, fake: {}}\n  - {name: deploy, fake: {}}\n"))
	e.serve(t)
	eventually.True(t, 10*time.Second, "the run to be stopped for the store", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.stopped[run.ID] && e.running[run.ID] == nil
	})
	if got := e.get(t, run.ID); got.Status != store.RunRunning {
		t.Fatalf("while the store refuses: run %s (%s); want it left running, its end not written", got.Status, got.Reason)
	}
	st.full.Store(false)
	eventually.True(t, 10*time.Second, "the run to succeed", func() bool { return e.get(t, run.ID).Status == store.RunSucceeded })
	atts, _ := e.store.ListAttempts(context.Background(), run.ID)
	var got []string
	for _, a := range atts {
		got = append(got, string(a.Status)+" "+a.Error)
	}
	if !slices.Equal(got, []string{"interrupted " + ReasonStoreRefused, "succeeded ", "succeeded "}) {
		t.Errorf("attempts = %q", got)
	}
}
