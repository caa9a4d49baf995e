package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// release is stages.Release over the store, for one run of one app.
type release struct {
	st    store.ReleaseProgress
	cmds  *notifier
	runID int64
	app   string
}

func (r *release) CommandGiven() <-chan struct{} { return r.cmds.wait(r.runID) }

func (r *release) Checkpoint(ctx context.Context) (*stages.Checkpoint, error) {
	got, err := r.st.GetRelease(ctx, r.runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &stages.Checkpoint{State: got.State, Step: got.Step, Weight: got.Weight, Reason: got.Reason, Data: got.Data}, nil
}

func (r *release) Save(ctx context.Context, c stages.Checkpoint) error {
	return r.st.SaveRelease(ctx, &store.Release{RunID: r.runID, App: r.app, State: c.State, Step: c.Step,
		Weight: c.Weight, Reason: c.Reason, Data: c.Data, UpdatedAt: time.Now()})
}

func (r *release) RecordMeasurement(ctx context.Context, m stages.Measurement) (int64, error) {
	m.RunID = r.runID
	err := r.st.AddMeasurement(ctx, &m)
	return m.ID, err
}

func (r *release) Measurements(ctx context.Context) ([]stages.Measurement, error) {
	return r.st.ListMeasurements(ctx, r.runID)
}

func (r *release) RecordRollback(ctx context.Context, rb stages.RollbackRecord) (int64, error) {
	evidence, err := json.Marshal(rb.Evidence)
	if err != nil {
		return 0, fmt.Errorf("recording the rollback's evidence: %w", err)
	}
	row := store.Rollback{RunID: r.runID, App: r.app, SourceSHA: rb.SourceSHA, Digest: rb.Digest, Trigger: rb.Trigger,
		Actor: rb.Actor, Reason: rb.Reason, Weight: rb.Weight, ReleaseCommit: rb.ReleaseCommit, RollbackCommit: rb.RollbackCommit,
		Evidence: evidence, DetectedAt: rb.DetectedAt, RestoredAt: rb.RestoredAt}
	err = r.st.AddRollback(ctx, &row)
	return row.ID, err
}

func (r *release) NextCommand(ctx context.Context) (*stages.Command, error) {
	c, err := r.st.TakeCommand(ctx, r.runID, time.Now())
	if err != nil || c == nil {
		return nil, err
	}
	return &stages.Command{Name: c.Name, Actor: c.Actor, Detail: c.Detail, At: c.CreatedAt}, nil
}

var _ stages.Release = (*release)(nil)
