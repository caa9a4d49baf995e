package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages"
)

// Runner executes pipeline runs. Create it with New; run Recover once at
// engine start, then Serve (long-running engine) or Drain (one-shot).
type Runner struct {
	store Store
	kinds *stages.Registry
	opts  options
	log   *slog.Logger
	notes *notifier // a run's status or log changed
	cmds  *notifier // a command was given to a run's release
	wake  chan struct{}

	mu      sync.Mutex
	running map[int64]context.CancelCauseFunc // runs executing in this process
	stopped map[int64]bool                    // runs stopped because the store refused their progress (storelost.go)
}

type options struct {
	logger         *slog.Logger
	workRoot       string
	maxParallel    int
	backoffBase    time.Duration
	backoffMax     time.Duration
	defaultTimeout time.Duration
	cleanupTimeout time.Duration
	maxResumes     int
	secrets        Secrets
	admission      Admission
	observer       Observer
	maxLogBytes    int64
	maxRunLogBytes int64
	runChanged     func(id int64)
	lease          leaseOptions
}

// Observer is told how stages and runs end, for the engine's metrics.
// Calls come from the goroutines executing runs: implementations must be
// safe for concurrent use and must not block.
type Observer interface {
	StageFinished(kind string, status store.StageStatus, d time.Duration)
	RunFinished(status store.RunStatus)
	// LogLinesDropped counts log lines lost because the store refused them.
	LogLinesDropped(n int)
}

type noObserver struct{}

func (noObserver) StageFinished(string, store.StageStatus, time.Duration) {}
func (noObserver) RunFinished(store.RunStatus)                            {}
func (noObserver) LogLinesDropped(int)                                    {}

// WithObserver reports stage and run outcomes to o (default: nobody).
func WithObserver(o Observer) Option {
	return func(opts *options) error {
		if o == nil {
			return errors.New("WithObserver: nil observer")
		}
		opts.observer = o
		return nil
	}
}

// WithRunChanged calls fn with a run's ID each time its status or one of
// its stages' changes (queued, started, a stage begun or ended, ended):
// for those who report runs elsewhere, such as the forge's commit
// status. fn must not block.
func WithRunChanged(fn func(id int64)) Option {
	return func(o *options) error {
		if fn == nil {
			return errors.New("WithRunChanged: nil func")
		}
		o.runChanged = fn
		return nil
	}
}

// changed wakes those following run id and tells whoever asked.
func (r *Runner) changed(id int64) {
	r.notes.notify(id)
	if r.opts.runChanged != nil {
		r.opts.runChanged(id)
	}
}

// Option configures a Runner.
type Option func(*options) error

// WithLogger sets the engine's structured logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l != nil {
			o.logger = l
		}
		return nil
	}
}

// WithWorkRoot sets the directory under which runs without a workdir of
// their own get one, removed when the run ends (default: a "work"
// directory in the OS temp dir).
func WithWorkRoot(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("WithWorkRoot: empty directory")
		}
		o.workRoot = dir
		return nil
	}
}

// WithMaxParallel bounds how many runs execute at once (default 4).
func WithMaxParallel(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("WithMaxParallel(%d): need at least 1", n)
		}
		o.maxParallel = n
		return nil
	}
}

// WithRetryBackoff sets the wait before retry k: base·2^(k-1), at most
// max (default 1s, 30s).
func WithRetryBackoff(base, max time.Duration) Option {
	return func(o *options) error {
		if base < 0 || max < base {
			return fmt.Errorf("WithRetryBackoff(%s, %s): need 0 ≤ base ≤ max", base, max)
		}
		o.backoffBase, o.backoffMax = base, max
		return nil
	}
}

// WithDefaultTimeout sets the timeout of stages that set none (default 1h).
func WithDefaultTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithDefaultTimeout(%s): must be positive", d)
		}
		o.defaultTimeout = d
		return nil
	}
}

// WithMaxLogBytes caps what one stage attempt's log keeps (default
// DefaultMaxLogBytes); past it a marker line says the rest was dropped.
func WithMaxLogBytes(n int64) Option {
	return func(o *options) error {
		if n < 1<<10 {
			return fmt.Errorf("WithMaxLogBytes(%d): at least 1 KiB", n)
		}
		o.maxLogBytes = n
		return nil
	}
}

// WithCleanupTimeout bounds each stage's Cleanup (default 2m).
func WithCleanupTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithCleanupTimeout(%s): must be positive", d)
		}
		o.cleanupTimeout = d
		return nil
	}
}

// WithMaxResumes sets how many engine restarts one run survives before it
// is failed rather than resumed again (default 3): a stage that crashes
// the engine every time must not crash it forever.
func WithMaxResumes(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("WithMaxResumes(%d): must not be negative", n)
		}
		o.maxResumes = n
		return nil
	}
}

// WithLookupEnv replaces os.LookupEnv for secrets declared as {env: VAR}
// (with the default LocalSecrets).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("WithLookupEnv: nil function")
		}
		o.secrets = LocalSecrets{LookupEnv: f}
		return nil
	}
}

// WithSecrets sets what gives runs their secrets (default LocalSecrets
// over os.LookupEnv: the operator's references, nothing granted). The
// engine passes its grants (triggers.Grants).
func WithSecrets(s Secrets) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("WithSecrets: nil")
		}
		o.secrets = s
		return nil
	}
}

// New returns a Runner over st that makes stages from kinds.
func New(st Store, kinds *stages.Registry, opts ...Option) (*Runner, error) {
	o := options{
		logger:         slog.New(slog.DiscardHandler),
		workRoot:       filepath.Join(os.TempDir(), "slipway-work"),
		maxParallel:    4,
		backoffBase:    time.Second,
		backoffMax:     30 * time.Second,
		defaultTimeout: time.Hour,
		cleanupTimeout: 2 * time.Minute,
		maxResumes:     3,
		secrets:        LocalSecrets{LookupEnv: os.LookupEnv},
		admission:      admitAll{},
		observer:       noObserver{},
		maxLogBytes:    DefaultMaxLogBytes,
		maxRunLogBytes: DefaultMaxRunLogBytes,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if st == nil || kinds == nil {
		return nil, errors.New("runner.New: store and stage registry are required")
	}
	r := &Runner{
		store: st, kinds: kinds, opts: o, log: o.logger,
		notes: newNotifier(), cmds: newNotifier(), wake: make(chan struct{}, 1),
		running: map[int64]context.CancelCauseFunc{},
	}
	if sig, ok := st.(store.Signaller); ok {
		sig.Subscribe(r.signalled) // for the store's lifetime, which is the runner's
	}
	return r, nil
}

// signalled wakes what waits on a change the store signalled, made by
// this engine or by another sharing the store.
func (r *Runner) signalled(s store.Signal) {
	switch s.Topic {
	case store.SignalQueued, store.SignalEnded:
		r.poke() // a run to start, or a finished one that held its group back
		r.notes.notify(s.ID)
	case store.SignalRun, store.SignalLogs:
		r.notes.notify(s.ID)
	case store.SignalCommand:
		r.cmds.notify(s.ID)
	case store.SignalResync:
		r.poke()
		r.notes.notifyAll()
		r.cmds.notifyAll()
	}
}

// Store returns the store the runner persists to.
func (r *Runner) Store() Store { return r.store }

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Request asks for one run of a pipeline.
type Request struct {
	Pipeline *pipeline.Pipeline
	Trigger  store.Trigger
	Workdir  string // where the stages run; "" gives the run a fresh directory
	// DedupKey, when set, makes the request idempotent: a second request
	// with the same key returns the first run instead of creating one.
	DedupKey string
	// Refused, when set, is why the engine will not run this pipeline (a
	// secret or app its repository is not granted): the run is recorded
	// as failed with this reason and none of its stages runs.
	Refused string
	// Slot, when set, names run slots the run takes one of while it runs
	// (its repository's), of which Slots may be taken at once: the run
	// waits for one, and runs of other slots start past it.
	Slot  string
	Slots int
}

// Submit queues a run and returns it with its ID; created is false when
// the request's DedupKey named an existing run, which is returned.
// With the cancel-previous policy, queued and running runs of the same
// concurrency group are cancelled; with queue, the run waits its turn.
func (r *Runner) Submit(ctx context.Context, req Request) (run *store.Run, created bool, err error) {
	p, err := r.Prepare(req)
	if err != nil {
		return nil, false, err
	}
	if err := r.store.CreateRun(ctx, &p.NewRun); errors.Is(err, store.ErrDuplicate) {
		existing, err := r.store.RunByKey(ctx, req.DedupKey)
		return existing, false, err
	} else if err != nil {
		return nil, false, fmt.Errorf("submitting run of %s: %w", p.Run.Pipeline, err)
	}
	return p.Run, true, r.Admit(ctx, p)
}

// Prepared is a run ready to be stored. Submit stores it alone; the
// webhook intake stores it in the transaction of the delivery that asks
// for it (store.Deliveries.RecordDelivery) and then hands it to Admit.
type Prepared struct {
	store.NewRun
	refused string
}

// Refused says why the engine will not run it ("" if it will).
func (p *Prepared) Refused() string { return p.refused }

// Prepare turns req into the run it asks for, storing nothing.
func (r *Runner) Prepare(req Request) (*Prepared, error) {
	p, trig := req.Pipeline, req.Trigger
	if p == nil || trig.Event == "" {
		return nil, errors.New("submitting run: no pipeline or no trigger event")
	}
	group, policy := "", pipeline.PolicyQueue
	if c := p.Concurrency; c != nil {
		data := templateData(p, 0, trig, nil, nil)
		g, err := pipeline.RenderString("concurrency.group", c.Group, data)
		if err != nil {
			return nil, fmt.Errorf("submitting run of %s: rendering concurrency group: %w", p.Metadata.Name, err)
		}
		group = scopeGroup(trig.Repo, g)
		if c.Policy != "" {
			policy = c.Policy
		}
	}
	if err := r.kinds.Check(p); err != nil && req.Refused == "" {
		req.Refused = err.Error() // recorded, not run: this engine could not run it
	}
	now := time.Now()
	prep := &Prepared{refused: req.Refused, NewRun: store.NewRun{
		Run: &store.Run{
			Pipeline: p.Metadata.Name, App: p.AppName(), PipelineFile: p.File, PipelineSource: p.Source,
			Workdir: req.Workdir, Trigger: trig, Group: group, Policy: policy,
			Status: store.RunQueued, CreatedAt: now, DedupKey: req.DedupKey, Untrusted: p.Untrusted,
			Slot: req.Slot, Slots: req.Slots,
		},
		Stages: pendingStages(p),
		Event:  store.Event{Time: now, Kind: "queued", Message: fmt.Sprintf("%s by %s %s", trig.Event, orDash(trig.Actor), orDash(trig.Ref))},
	}}
	if req.Refused != "" {
		prep.refuse(now)
	}
	return prep, nil
}

// refuse makes the prepared run one that is stored ended: failed, its
// stages skipped, so that no claim — of this engine or another sharing
// the store — can ever start a stage of it.
func (p *Prepared) refuse(now time.Time) {
	run := p.Run
	run.Status, run.Reason, run.FinishedAt = store.RunFailed, "refused: "+p.refused, now
	for i := range p.Stages {
		p.Stages[i].Status, p.Stages[i].Error, p.Stages[i].FinishedAt = store.StageSkipped, "not run: the run was refused", now
	}
	p.Event.Kind = string(store.RunFailed)
	p.Event.Message = run.Reason + " (" + p.Event.Message + ")"
}

// pendingStages are the stages of a new run of p.
func pendingStages(p *pipeline.Pipeline) []store.Stage {
	rows := make([]store.Stage, len(p.Stages))
	for i, s := range p.Stages {
		rows[i] = store.Stage{Index: i, Name: s.Name, Kind: s.Kind(), Status: store.StagePending}
	}
	return rows
}

// Admit carries on after a prepared run was stored: a refused run (stored
// ended) is counted, the older runs of a cancel-previous group are
// cancelled, and the dispatcher is woken.
func (r *Runner) Admit(ctx context.Context, p *Prepared) error {
	run := p.Run
	r.changed(run.ID)
	if p.refused != "" {
		r.opts.observer.RunFinished(run.Status)
		r.log.Info("run refused", "run", run.ID, "pipeline", run.Pipeline, "reason", run.Reason)
		return nil
	}
	if run.Policy == pipeline.PolicyCancelPrevious && run.Group != "" {
		if err := r.cancelGroup(ctx, run.Group, run.ID); err != nil {
			return err
		}
	}
	r.poke()
	return nil
}

// scopeGroup puts a concurrency group under the repository that
// triggered the run, so that no repository can cancel or hold up the runs
// of another by naming its group.
func scopeGroup(repo, group string) string {
	if repo == "" || group == "" {
		return group
	}
	return repo + "#" + group
}

// cancelGroup cancels the runs of group older than newest.
func (r *Runner) cancelGroup(ctx context.Context, group string, newest int64) error {
	older, err := r.store.ListRuns(ctx, store.RunFilter{Group: group, Status: []store.RunStatus{store.RunQueued, store.RunRunning}, BeforeID: newest, Limit: 1000})
	if err != nil {
		return fmt.Errorf("cancelling older runs of group %s: %w", group, err)
	}
	for _, o := range older {
		if err := r.Cancel(ctx, o.ID, fmt.Sprintf("superseded by run %d (concurrency group %s)", newest, group)); err != nil && !errors.Is(err, ErrFinished) {
			return err
		}
	}
	return nil
}

// ErrFinished is returned by Cancel for a run that already finished.
var ErrFinished = errors.New("run already finished")

// errCancelled is the cause attached to a run's context by Cancel.
type errCancelled struct{ reason string }

func (e errCancelled) Error() string { return "cancelled: " + e.reason }

// Cancel stops run id: a queued run is cancelled at once; a running one
// has its stage's context cancelled, and is marked cancelled only after
// the stage returned and its Cleanup ran.
func (r *Runner) Cancel(ctx context.Context, id int64, reason string) error {
	ok, err := r.move(ctx, id, []store.RunStatus{store.RunQueued}, store.RunCancelled, reason)
	if err != nil {
		return err
	}
	if ok {
		r.skipPending(ctx, id, "run cancelled before it started")
		return nil
	}
	// A run that has recorded its end may still be in r.running for a
	// moment (until its goroutine returns): the stored status decides.
	run, err := r.store.GetRun(ctx, id)
	if err != nil {
		return err
	}
	if run.Status.Done() {
		return fmt.Errorf("cancelling run %d: %w (%s)", id, ErrFinished, run.Status)
	}
	r.mu.Lock() // dispatch claims and registers under mu: a claimed run is in r.running
	cancel := r.running[id]
	r.mu.Unlock()
	if cancel != nil {
		r.event(ctx, id, "cancel-requested", reason)
		cancel(errCancelled{reason})
		return nil
	}
	return fmt.Errorf("cancelling run %d: it is %s in another engine", id, run.Status)
}

// Wait blocks until run id has finished and returns it.
func (r *Runner) Wait(ctx context.Context, id int64) (*store.Run, error) {
	for {
		wake := r.notes.wait(id)
		run, err := r.store.GetRun(ctx, id)
		if err != nil || run.Status.Done() {
			return run, err
		}
		if err := sleepUntil(ctx, wake, pollInterval); err != nil {
			return nil, err
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
