package release

import (
	"context"
	"time"
)

// Store is what the engine keeps for one release (a canary stage of one
// run): its checkpoint (so a restarted engine carries on where it stood),
// its measurements and its rollback record (the evidence on-call reads),
// and the requests people and alerts make of it (promote, abort, …). The
// runner implements it over its store; methods are safe for concurrent
// use. Every method is idempotent where the contract says so, because a
// crash can repeat any step.
type Store interface {
	// Checkpoint returns what Save stored last for this run, or nil.
	Checkpoint(ctx context.Context) (*Checkpoint, error)
	// Save replaces the checkpoint.
	Save(ctx context.Context, c Checkpoint) error
	// RecordMeasurement stores one measurement and returns its ID.
	RecordMeasurement(ctx context.Context, m Measurement) (int64, error)
	// Measurements returns this run's measurements, oldest first.
	Measurements(ctx context.Context) ([]Measurement, error)
	// RecordRollback stores the run's rollback record and returns its ID; a
	// second call for the same run returns the first record's ID.
	RecordRollback(ctx context.Context, r Rollback) (int64, error)
	// NextRequest returns the oldest request not yet taken, or nil. Each
	// request is returned once.
	NextRequest(ctx context.Context) (*Request, error)
	// RequestMade returns a channel closed when a request may have been
	// made since the call — on this engine or another sharing its store.
	// Take it before NextRequest, so that a request made in between is not
	// missed. It is a wake-up, not a promise; nil never wakes.
	RequestMade() <-chan struct{}
}

// Checkpoint is where a release stands: its State, the step and weight,
// why, and the stage's own notes as JSON.
type Checkpoint struct {
	State  State
	Step   int
	Weight int
	Reason string
	Data   []byte
}

// DryRunNote begins the message of every measurement of a metric in dry
// run (dryRun: true): measured and explained, never deciding.
const DryRunNote = "dry run, never changes the outcome"

// Rollback says what was rolled back, why, on what evidence, with
// which config-repo commits, and when traffic was back on stable.
type Rollback struct {
	SourceSHA      string
	Digest         string
	Trigger        string // analysis, manual, alert
	Actor          string // who aborted, or the alert's name
	Reason         string
	Weight         int
	ReleaseCommit  string
	RollbackCommit string
	Evidence       RollbackEvidence
	DetectedAt     time.Time
	RestoredAt     time.Time
}

// RollbackEvidence is what a rollback was decided on and how fast it went:
// the canary stage writes it, the runner stores it as JSON, the server's
// explanation reads it. Its JSON form is the one stored since rollbacks
// were first recorded, so older records read the same.
type RollbackEvidence struct {
	Detail  RollbackDetail  `json:"detail"`
	Timings RollbackTimings `json:"timings"`
}

// RollbackDetail is the deciding measurements and the limit they reached
// (a rollback by analysis), or the alert behind the abort (by an alert);
// empty for a person's abort.
type RollbackDetail struct {
	Measurements          []Measurement `json:"measurements,omitempty"`
	FailureLimit          int           `json:"failureLimit,omitempty"`
	ConsecutiveErrorLimit int           `json:"consecutiveErrorLimit,omitempty"`
	Alert
}

// Alert is an Alertmanager alert as Slipway keeps it.
type Alert struct {
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// RollbackTimings are the moments of a rollback: detection, decision,
// the rollback commit pushed, traffic verified back on stable.
type RollbackTimings struct {
	DetectedAt time.Time `json:"detectedAt,omitzero"`
	DecidedAt  time.Time `json:"decidedAt,omitzero"`
	PushedAt   time.Time `json:"pushedAt,omitzero"`
	RestoredAt time.Time `json:"restoredAt,omitzero"`
}

// CommandDetail is a Request's Detail as JSON: why, and for an abort that
// Alertmanager sent, the alert.
type CommandDetail struct {
	Reason    string `json:"reason,omitempty"`
	AlertName string `json:"alertname,omitempty"`
	Alert     *Alert `json:"alert,omitempty"`
}

// Request is a Command given to a release by Actor (a person, or an
// alert); Detail is a CommandDetail as JSON.
type Request struct {
	Command Command
	Actor   string
	Detail  []byte
	At      time.Time
}

// Progress is what a canary tells people about where it stands,
// beside its checkpoint: what it releases, its planned steps, when the
// current step began and the weight Argo CD last reported live. The
// canary keeps it in its checkpoint's Data (its fields at the top level
// of that JSON object); the server reads it for the release page.
type Progress struct {
	Image         string        `json:"image,omitempty"`
	Digest        string        `json:"digest,omitempty"`
	Steps         []PlannedStep `json:"steps,omitempty"`
	StepStartedAt time.Time     `json:"stepStartedAt,omitzero"`
	LiveWeight    *int          `json:"liveWeight,omitempty"` // nil until Argo CD has reported one
	LiveAt        time.Time     `json:"liveAt,omitzero"`
}

// PlannedStep is one configured step of a canary: a weight analysed for
// Interval, or a pause (Pause "until promoted" when it waits for a person).
type PlannedStep struct {
	Weight   int    `json:"weight,omitempty"`
	Interval string `json:"interval,omitempty"`
	Pause    string `json:"pause,omitempty"`
}
