package store

import (
	"context"
	"errors"
	"time"
)

// ErrDuplicate is returned by CreateRun when a run with the same DedupKey
// exists already.
var ErrDuplicate = errors.New("duplicate")

// Delivery statuses.
const (
	DeliveryReceived  = "received"  // stored, not yet turned into runs
	DeliveryProcessed = "processed" // runs created (or none matched)
	DeliveryIgnored   = "ignored"   // an event Slipway does not act on
	DeliveryFailed    = "failed"    // could not be processed; a redelivery retries it
)

// Match says what one pipeline made of a delivery.
type Match struct {
	Pipeline string `json:"pipeline"`
	RunID    int64  `json:"runId,omitempty"`
	Reason   string `json:"reason,omitempty"` // why no run was started
}

// Delivery is one webhook delivery from a git forge, persisted before it is
// answered. (Forge, ID) identifies it across redeliveries.
type Delivery struct {
	Forge      string
	ID         string
	ReceivedAt time.Time
	Event      string // push, tag, ping, or the forge's own name of an ignored event
	Repo       string
	Ref        string
	SHA        string
	Status     string
	Reason     string
	Matches    []Match
	Payload    []byte // the normalized event, to process it again after a crash
}

// RunIDs lists the runs a delivery started.
func (d *Delivery) RunIDs() []int64 {
	ids := []int64{}
	for _, m := range d.Matches {
		if m.RunID != 0 {
			ids = append(ids, m.RunID)
		}
	}
	return ids
}

// Processed reports whether the delivery was processed (neither only
// received nor failed): a redelivery of it is a duplicate.
func (d *Delivery) Processed() bool {
	return d != nil && d.Status != DeliveryReceived && d.Status != DeliveryFailed
}

// DeliveryFilter selects deliveries; zero fields match everything.
type DeliveryFilter struct {
	Status string
	Repo   string
	Limit  int // default 50
}

// Deliveries persists webhook deliveries.
type Deliveries interface {
	// CreateDelivery stores d; if (Forge, ID) exists it stores nothing and
	// returns the existing delivery.
	CreateDelivery(ctx context.Context, d *Delivery) (existing *Delivery, err error)
	// UpdateDelivery saves the outcome (status, reason, matches) of d.
	UpdateDelivery(ctx context.Context, d *Delivery) error
	// RecordDelivery stores d with the runs it starts, in one transaction.
	// If (Forge, ID) exists and was processed (neither received nor
	// failed), nothing is written and the existing delivery is returned.
	// Otherwise the runs are created (see NewRun: one whose DedupKey
	// exists is not), then outcome sets d's status, reason and matches
	// from them, and d is saved. outcome may be called more than once.
	RecordDelivery(ctx context.Context, d *Delivery, runs []*NewRun, outcome func(*Delivery)) (existing *Delivery, err error)
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, error)
}

// Heads are the branch and tag heads the engine last saw of each watched
// repository (ref → commit), from deliveries and from listing the
// repository on its forge.
type Heads interface {
	// ListHeads returns repo's heads, and whether repo was listed before
	// (AddHeads).
	ListHeads(ctx context.Context, repo string) (heads map[string]string, listed bool, err error)
	// AddHeads records the heads of refs that have none recorded, and
	// marks repo listed.
	AddHeads(ctx context.Context, repo string, heads map[string]string, at time.Time) error
	// MoveHead records that ref of repo moved from before to after ("":
	// deleted) — only if the head stored is before, or none is: a push
	// known late never moves a head back.
	MoveHead(ctx context.Context, repo, ref, before, after string, at time.Time) error
}

// Schedules remembers when each cron schedule last fired.
type Schedules interface {
	// LastFire returns the zero time for a schedule that never fired.
	LastFire(ctx context.Context, key string) (time.Time, error)
	SetLastFire(ctx context.Context, key string, at time.Time) error
}

// AuditEntry is one mutating action, by whom, on what.
type AuditEntry struct {
	ID     int64
	Time   time.Time
	Actor  string
	Action string // e.g. run.trigger, run.cancel
	Target string // e.g. pipeline/order-service, run/42
	Detail string
}

// Audit is an append-only log: there is no way to change or remove an entry.
type Audit interface {
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns entries newest first, with ID < beforeID when beforeID > 0.
	ListAudit(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error)
}

// StatusCounter counts runs by status, for the engine's metrics and the
// UI's home page.
type StatusCounter interface {
	// CountRuns counts the runs of apps by status (none: of every app).
	CountRuns(ctx context.Context, apps []string) (map[RunStatus]int, error)
}

// Artifact is a document a stage attempt produced.
type Artifact struct {
	RunID     int64
	Index     int // stage
	Attempt   int
	Name      string
	MediaType string
	Subject   string // e.g. the image digest a scan report describes
	Size      int
	CreatedAt time.Time
	Data      []byte // empty in listings
}

// Artifacts persists stage artifacts.
type Artifacts interface {
	// PutArtifact stores a; storing the same (run, stage, attempt, name) again replaces it.
	PutArtifact(ctx context.Context, a Artifact) error
	// ListArtifacts lists a run's artifacts without their data.
	ListArtifacts(ctx context.Context, runID int64) ([]Artifact, error)
	// GetArtifact returns one artifact with its data (the latest attempt's), or ErrNotFound.
	GetArtifact(ctx context.Context, runID int64, index int, name string) (*Artifact, error)
}
