package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a run does not exist.
var ErrNotFound = errors.New("not found")

// RunStatus is where a run is in its life: queued → running →
// succeeded | failed | cancelled. A run interrupted by an engine crash goes
// from running back to queued (resumed) or to failed.
type RunStatus string

const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Done reports whether the status is final.
func (s RunStatus) Done() bool { return s == RunSucceeded || s == RunFailed || s == RunCancelled }

// StageStatus is where a stage (and each of its attempts) is.
type StageStatus string

const (
	StagePending   StageStatus = "pending"
	StageRunning   StageStatus = "running"
	StageSucceeded StageStatus = "succeeded"
	StageFailed    StageStatus = "failed"
	StageCancelled StageStatus = "cancelled"
	StageSkipped   StageStatus = "skipped"
)

// Trigger says what started a run.
type Trigger struct {
	Event  string            `json:"event"` // push, tag, schedule, manual
	Repo   string            `json:"repo,omitempty"`
	Ref    string            `json:"ref,omitempty"`
	SHA    string            `json:"sha,omitempty"`
	Actor  string            `json:"actor,omitempty"`
	Params map[string]string `json:"params,omitempty"`
}

// Run is one execution of a pipeline. The pipeline's source is kept with
// it, so a restarted engine resumes exactly what was started.
type Run struct {
	ID             int64
	Pipeline       string
	App            string
	PipelineFile   string
	PipelineSource []byte
	Workdir        string
	Trigger        Trigger
	Group          string // concurrency group, rendered; "" for none
	Policy         string // queue or cancel-previous
	// Slot names the run slots it takes one of while it runs (its
	// repository's, for a pipeline read from one; "" for none) and Slots
	// how many runs holding that name may run at once.
	Slot       string
	Slots      int
	Status     RunStatus
	Reason     string    // why it failed or was cancelled, in words
	Resumes    int       // times resumed after an engine restart
	DedupKey   string    // unique when set: one delivery or schedule fire makes one run
	Untrusted  bool      // its pipeline was read from a repository (see pipeline.ParseUntrusted)
	Owner      string    // the engine running it, when engines share the store ("" otherwise)
	LeaseUntil time.Time // when Owner's lease on it ends unless renewed
	Epoch      int64     // raised by each claim and takeover: the fencing token of the lease (fence.go)
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Stage is the state of one stage of a run, summed over its attempts.
type Stage struct {
	RunID      int64
	Index      int
	Name       string
	Kind       string
	Status     StageStatus
	Attempts   int
	Error      string
	Outputs    map[string]string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Attempt is one try of one stage. (RunID, Index, Attempt) identifies it.
type Attempt struct {
	RunID      int64
	Index      int
	Attempt    int
	Status     StageStatus
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
}

// LogLine is one line of a stage log (Stage is "" for the run's own lines).
// Seq orders lines and increases across the whole store.
type LogLine struct {
	Seq     int64
	RunID   int64
	Stage   string
	Attempt int
	Time    time.Time
	Text    string
}

// Event is one entry of a run's timeline.
type Event struct {
	RunID   int64
	Time    time.Time
	Kind    string // queued, started, stage-started, retry, cancel-requested, resumed, finished, …
	Message string
}

// RepositorySlot names the run slots of the repository of this name in
// the engine config, which its pushed pipelines' runs take (Run.Slot).
func RepositorySlot(name string) string { return "repository " + name }

// RunFilter selects runs for listing; zero fields match everything.
type RunFilter struct {
	Pipeline string
	// Repository selects the runs of pipelines read from the repository
	// of this name in the engine config (those holding its run slots).
	Repository string
	Status     []RunStatus
	Group      string
	BeforeID   int64 // paging: only runs with a smaller ID
	Limit      int   // default 50
}

// NewRun is a run to create with its pending stages and the event that
// says why it was queued (its RunID is set when the run is). Once stored,
// Created says whether it was: false when a run with its DedupKey existed,
// whose ID Run.ID then holds.
type NewRun struct {
	Run     *Run
	Stages  []Stage
	Event   Event
	Created bool
}

// Runs persists runs and guards their status transitions.
type Runs interface {
	// CreateRun stores a new run (its ID is assigned and set on n.Run)
	// with one row per stage and n.Event (when it has a Kind),
	// atomically. The run is stored with its Status: a run created in a
	// final status (refused) is never claimed, and its stages are stored
	// with their Status and Error (pending when Status is empty). If the
	// run's DedupKey is set and a run with that key exists, it stores
	// nothing and returns ErrDuplicate.
	CreateRun(ctx context.Context, n *NewRun) error
	GetRun(ctx context.Context, id int64) (*Run, error)
	ListRuns(ctx context.Context, f RunFilter) ([]*Run, error)
	// RunByKey returns the run created with DedupKey key, or ErrNotFound.
	RunByKey(ctx context.Context, key string) (*Run, error)
	// TransitionRun sets the status of run id to `to` only if it is one of
	// `from`, and reports whether it did: concurrent callers cannot both win.
	// The winner's transition is in the run's timeline, in the same
	// transaction: an event of kind `to` saying reason.
	TransitionRun(ctx context.Context, id int64, from []RunStatus, to RunStatus, reason string, at time.Time) (bool, error)
	// ClaimNext moves the oldest queued run that may start to running,
	// leased to lease.Owner at a raised Epoch, and returns it, or returns nil. A run may
	// start when no run of its concurrency group is running and no older
	// run of the group is queued. The claim is in the run's timeline, in
	// the same transaction: an event "started" saying StartedBy(lease).
	// Moving a run to queued or to a final status ends its lease.
	ClaimNext(ctx context.Context, at time.Time, lease Lease) (*Run, error)
	// RenewLeases extends the lease of every running run of owner to until
	// and returns their IDs: a run missing from them was taken over.
	RenewLeases(ctx context.Context, owner string, until time.Time) ([]int64, error)
	// TakeExpired leases running run id to lease.Owner if its lease ended
	// before at, raising its Epoch, and reports whether it did: of engines
	// racing to recover a run, one wins, and the loser's writes under the
	// old epoch are refused from then on.
	TakeExpired(ctx context.Context, id int64, at time.Time, lease Lease) (bool, error)
}

// Lease is an engine's claim on a running run, when engines share a
// store. The zero Lease is an engine alone on its store: its running
// runs are orphans whenever it starts.
type Lease struct {
	Owner string
	Until time.Time
}

// StartedBy is what a run's "started" event says of the engine that
// claimed it: nothing for an engine alone on its store.
func StartedBy(lease Lease) string {
	if lease.Owner == "" {
		return ""
	}
	return "on engine " + lease.Owner
}

// Stages persists stage and attempt state.
type Stages interface {
	ListStages(ctx context.Context, runID int64) ([]*Stage, error)
	ListAttempts(ctx context.Context, runID int64) ([]*Attempt, error)
	// StartAttempt records that attempt n of stage index began; calling it
	// again for the same attempt changes nothing.
	StartAttempt(ctx context.Context, runID int64, index, n int, at time.Time) error
	// FinishAttempt records the outcome of an attempt and of its stage.
	FinishAttempt(ctx context.Context, runID int64, index, n int, status StageStatus, errMsg string, outputs map[string]string, at time.Time) error
	// SetStageStatus sets a stage's status without an attempt (skipped, or
	// cancelled before it started).
	SetStageStatus(ctx context.Context, runID int64, index int, status StageStatus, reason string, at time.Time) error
	// SkipPending marks every stage of the run that never started as
	// skipped, saying reason.
	SkipPending(ctx context.Context, runID int64, reason string, at time.Time) error
}

// Logs persists log lines.
type Logs interface {
	// AppendLogs stores lines in order and sets their Seq.
	AppendLogs(ctx context.Context, lines []LogLine) error
	// ReadLogs returns up to limit lines of a run with Seq > afterSeq, in order.
	ReadLogs(ctx context.Context, runID, afterSeq int64, limit int) ([]LogLine, error)
	// ReadLogsBefore returns the last limit lines of a run with Seq <
	// beforeSeq (0: the end of the log), of one stage unless stage is "",
	// in order: a page read backwards.
	ReadLogsBefore(ctx context.Context, runID int64, stage string, beforeSeq int64, limit int) ([]LogLine, error)
}

// Events persists run timelines.
type Events interface {
	AppendEvent(ctx context.Context, e Event) error
	ListEvents(ctx context.Context, runID int64) ([]Event, error)
}

// Store is all of the engine's store, as sqlstore implements it; each
// consumer declares the part it calls (runner.Store, the server's parts,
// triggers' intake). Implementations are safe for concurrent use.
type Store interface {
	Runs
	Stages
	Logs
	Events
	Deliveries
	Schedules
	Heads
	Audit
	StatusCounter
	Artifacts
	Releases
	Close() error
}

// Signal is a wake-up from the store: Topic says what changed, ID which
// run. Engines sharing a store receive each other's.
type Signal struct {
	Topic string
	ID    int64
}

// Signal topics.
const (
	SignalQueued  = "queued"  // a run was queued or queued again
	SignalRun     = "run"     // a run's status changed (but to queued or finished)
	SignalEnded   = "ended"   // a run finished: the next of its group may start
	SignalCommand = "command" // a command was given to a run's release
	SignalLogs    = "logs"    // log lines of a run were written
	SignalResync  = "resync"  // signals may have been lost: look again
)

// Signaller is a store that signals changes to every engine on it, so
// that none needs to poll: Subscribe calls fn (which must not block) with
// each signal until unsubscribe is called.
type Signaller interface {
	Subscribe(fn func(Signal)) (unsubscribe func())
}
