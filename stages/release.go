package stages

import (
	"context"
	"errors"
	"time"

	"github.com/slipwayci/slipway/release"
)

// ErrShutdown is the cause of a stage's context when the engine is going
// away (SIGTERM, a drained one-shot run): the attempt is interrupted and
// resumed at the next start. Any other cancellation — the run was
// cancelled, the stage timed out — is final. A canary rolls back then, but
// not on ErrShutdown: traffic stays where it is until the engine is back.
var ErrShutdown = errors.New("engine shutting down")

// ShuttingDown reports whether ctx ended because the engine is going away.
func ShuttingDown(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrShutdown) }

// Release is what the engine keeps for a canary stage: its checkpoint (so
// a restarted engine carries on where it stood), its measurements and its
// rollback record (the evidence on-call reads), and the commands people
// and alerts give it (promote, abort, …). The runner implements it over
// its store, for one run; methods are safe for concurrent use. Every
// method is idempotent where the contract says so, because a crash can
// repeat any step.
type Release interface {
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
	RecordRollback(ctx context.Context, r RollbackRecord) (int64, error)
	// NextCommand returns the oldest command not yet taken, or nil. Each
	// command is returned once.
	NextCommand(ctx context.Context) (*Command, error)
	// CommandGiven returns a channel closed when a command may have been
	// given since the call — on this engine or another sharing its store.
	// Take it before NextCommand, so that a command given in between is
	// not missed. It is a wake-up, not a promise; nil never wakes.
	CommandGiven() <-chan struct{}
}

// Checkpoint is where a release stands: State (progressing, paused,
// promoting, rolling-back, promoted, rolled-back), the step and weight,
// why, and the stage's own notes as JSON.
type Checkpoint struct {
	State  release.State
	Step   int
	Weight int
	Reason string
	Data   []byte
}

// DryRunNote begins the message of every measurement of a metric in dry
// run (dryRun: true): measured and explained, never deciding.
const DryRunNote = "dry run, never changes the outcome"

// Measurement is one measurement of a canary step (release.Measurement:
// the store and the API keep the same).
type Measurement = release.Measurement

// RollbackRecord says what was rolled back, why, on what evidence, with
// which config-repo commits, and when traffic was back on stable.
type RollbackRecord struct {
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

// CommandDetail is a Command's Detail as JSON: why, and for an abort that
// Alertmanager sent, the alert.
type CommandDetail struct {
	Reason    string `json:"reason,omitempty"`
	AlertName string `json:"alertname,omitempty"`
	Alert     *Alert `json:"alert,omitempty"`
}

// Command is a request to a release: promote, promote-full, abort, pause
// or resume, by Actor; Detail is a CommandDetail as JSON.
type Command struct {
	Name   string
	Actor  string
	Detail []byte
	At     time.Time
}

// ReleaseProgress is what a canary tells people about where it stands,
// beside its checkpoint: what it releases, its planned steps, when the
// current step began and the weight Argo CD last reported live. The
// canary keeps it in its checkpoint's Data (its fields at the top level
// of that JSON object); the server reads it for the release page.
type ReleaseProgress struct {
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
