package store

import (
	"context"
	"time"
)

// Measurement is one stored analysis measurement of a canary step.
type Measurement struct {
	ID       int64
	RunID    int64
	Index    int // the canary stage
	Weight   int // the canary's traffic share when measured
	Metric   string
	Query    string // as rendered and sent
	Value    float64
	Min, Max *float64
	Requests float64 // -1 when not measured
	Outcome  string  // pass, fail, inconclusive, error
	Message  string
	At       time.Time
}

// Rollback is the record of one rollback: what, why, by what evidence,
// which commits, how fast traffic was back on stable.
type Rollback struct {
	ID             int64
	RunID          int64
	App            string
	SourceSHA      string
	Digest         string
	Trigger        string // analysis, manual, alert
	Actor          string // who aborted (manual), the alert's name (alert)
	Reason         string
	Weight         int    // the canary's share when it was rolled back
	ReleaseCommit  string // the config-repo commit that deployed the canary
	RollbackCommit string // the config-repo commit that rolled it back
	Evidence       []byte // JSON: the failing measurements' IDs, or the alert
	DetectedAt     time.Time
	RestoredAt     time.Time // traffic back on stable
}

// RollbackFilter selects rollbacks; zero fields match everything.
type RollbackFilter struct {
	App   string
	Since time.Time
	Limit int // default 50
}

// Releases persists the evidence of canary releases.
type Releases interface {
	AddMeasurement(ctx context.Context, m *Measurement) error // sets m.ID
	ListMeasurements(ctx context.Context, runID int64) ([]Measurement, error)
	AddRollback(ctx context.Context, r *Rollback) error // sets r.ID
	GetRollback(ctx context.Context, id int64) (*Rollback, error)
	ListRollbacks(ctx context.Context, f RollbackFilter) ([]*Rollback, error) // newest first
}
