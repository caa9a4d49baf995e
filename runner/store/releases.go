package store

import (
	"context"
	"time"

	"github.com/slipwayci/slipway/release"
)

// Measurement is one stored analysis measurement of a canary step.
type Measurement = release.Measurement

// Rollback is the record of one rollback: what, why, by what evidence,
// which commits, how fast traffic was back on stable.
type Rollback struct {
	ID    int64
	RunID int64
	App   string
	release.Rollback
}

// RollbackFilter selects rollbacks; zero fields match everything.
type RollbackFilter struct {
	App   string
	Since time.Time
	Limit int // default 50
}

// Releases persists canary releases: what the stage carrying one out
// writes (ReleaseProgress) and what people read and send it
// (ReleaseControl).
type Releases interface {
	ReleaseProgress
	ReleaseControl
}

// ReleaseProgress is a release's side, written by the canary stage (through
// the runner): where it stands, its measurements, its rollback, and the
// commands it takes.
type ReleaseProgress interface {
	// SaveRelease creates or replaces the checkpoint of run r.RunID.
	SaveRelease(ctx context.Context, r *Release) error
	// GetRelease returns the checkpoint of a run, or ErrNotFound.
	GetRelease(ctx context.Context, runID int64) (*Release, error)
	AddMeasurement(ctx context.Context, m *Measurement) error // sets m.ID
	ListMeasurements(ctx context.Context, runID int64) ([]Measurement, error)
	AddRollback(ctx context.Context, r *Rollback) error // sets r.ID; a run's second rollback returns the first's ID
	// TakeCommand returns the oldest command of a run not yet taken and
	// marks it taken, or returns nil: each command is taken once.
	TakeCommand(ctx context.Context, runID int64, at time.Time) (*Command, error)
}

// ReleaseControl is people's side, the server's: the releases and
// rollbacks they read, and the commands they give.
type ReleaseControl interface {
	// ListReleases returns the checkpoints of app (every app when ""),
	// newest first; with inFlight only those not yet promoted or rolled
	// back whose run is still queued or running.
	ListReleases(ctx context.Context, app string, inFlight bool) ([]*Release, error)
	GetRollback(ctx context.Context, id int64) (*Rollback, error)
	ListRollbacks(ctx context.Context, f RollbackFilter) ([]*Rollback, error) // newest first
	// CountRollbacks counts every rollback by app and trigger.
	CountRollbacks(ctx context.Context) ([]RollbackCount, error)
	// AddCommand queues a command for a release (c.ID is set) and appends
	// its audit entries, atomically.
	AddCommand(ctx context.Context, c *Command, audit ...AuditEntry) error
}

// RollbackCount is how many rollbacks of App a Trigger caused.
type RollbackCount struct {
	App, Trigger string
	N            int
}

// Release is the checkpoint of a canary release: where it stands, and the
// canary stage's own notes (Data, JSON) to carry on after a restart.
type Release struct {
	RunID int64
	App   string
	release.Checkpoint
	UpdatedAt time.Time
}

// Command is what a person (or an alert) asks of a release: promote,
// promote-full, abort, pause, resume.
type Command struct {
	ID        int64
	RunID     int64
	Name      release.Command
	Actor     string
	Detail    []byte // JSON, e.g. the alert that asked for an abort
	CreatedAt time.Time
}
