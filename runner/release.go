package runner

import (
	"context"
	"errors"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// releaseStore is release.Store over the store, for one run of one app.
type releaseStore struct {
	st    store.ReleaseProgress
	cmds  *notifier
	runID int64
	app   string
}

func (r *releaseStore) RequestMade() <-chan struct{} { return r.cmds.wait(r.runID) }

func (r *releaseStore) Checkpoint(ctx context.Context) (*release.Checkpoint, error) {
	got, err := r.st.GetRelease(ctx, r.runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &got.Checkpoint, nil
}

func (r *releaseStore) Save(ctx context.Context, c release.Checkpoint) error {
	return r.st.SaveRelease(ctx, &store.Release{RunID: r.runID, App: r.app, Checkpoint: c, UpdatedAt: time.Now()})
}

func (r *releaseStore) RecordMeasurement(ctx context.Context, m release.Measurement) (int64, error) {
	m.RunID = r.runID
	err := r.st.AddMeasurement(ctx, &m)
	return m.ID, err
}

func (r *releaseStore) Measurements(ctx context.Context) ([]release.Measurement, error) {
	return r.st.ListMeasurements(ctx, r.runID)
}

func (r *releaseStore) RecordRollback(ctx context.Context, rb release.Rollback) (int64, error) {
	row := store.Rollback{RunID: r.runID, App: r.app, Rollback: rb}
	err := r.st.AddRollback(ctx, &row)
	return row.ID, err
}

func (r *releaseStore) NextRequest(ctx context.Context) (*release.Request, error) {
	c, err := r.st.TakeCommand(ctx, r.runID, time.Now())
	if err != nil || c == nil {
		return nil, err
	}
	return &release.Request{Command: c.Name, Actor: c.Actor, Detail: c.Detail, At: c.CreatedAt}, nil
}

var _ release.Store = (*releaseStore)(nil)
