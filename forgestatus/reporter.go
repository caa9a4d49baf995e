package forgestatus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipwayci/slipway/excerpt"
	"github.com/slipwayci/slipway/runner/store"
)

// Runs is what the reporter reads of runs, and where it says what
// happened to a report.
type Runs interface {
	GetRun(ctx context.Context, id int64) (*store.Run, error)
	ListStages(ctx context.Context, runID int64) ([]*store.Stage, error)
	AppendLogs(ctx context.Context, lines []store.LogLine) error
}

// Options tune a Reporter; the zero value is the production one.
type Options struct {
	Client   *http.Client               // default: 10 s timeout
	Attempts int                        // per status, default 5
	Backoff  time.Duration              // first retry's wait, doubled each time; default 1 s
	MaxWait  time.Duration              // the longest a rate limit is waited out; default 5 min
	Count    func(forge, result string) // ok, retried, failed; may be nil
	Log      *slog.Logger
}

// Reporter turns run changes into commit statuses. RunChanged may be
// called from anywhere and never blocks; Run posts, one status at a
// time, newest state first: a run that moved on while its report was
// being retried is reported as it is now.
type Reporter struct {
	runs    Runs
	forges  map[string]Forge // by repository URL as runs carry it
	baseURL string
	opts    Options

	mu      sync.Mutex
	pending map[int64]bool
	wake    chan struct{}
	posted  map[string]Status // by forge repo + sha + context: the last status that landed
}

// NewReporter reports the runs of the repositories in forges (keyed by
// the repository URL a run's trigger names); baseURL is where the
// engine's pages are (the run's link is baseURL/runs/{id}).
func NewReporter(runs Runs, forges map[string]Forge, baseURL string, opts Options) *Reporter {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Minute
	}
	if opts.Count == nil {
		opts.Count = func(string, string) {}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Reporter{runs: runs, forges: forges, baseURL: strings.TrimSuffix(baseURL, "/"), opts: opts,
		pending: map[int64]bool{}, wake: make(chan struct{}, 1), posted: map[string]Status{}}
}

// RunChanged notes that run id changed; Run reports it.
func (r *Reporter) RunChanged(id int64) {
	if len(r.forges) == 0 {
		return // no repository asks for statuses: nothing to read or send
	}
	r.mu.Lock()
	r.pending[id] = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// next takes a pending run, or 0.
func (r *Reporter) next() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.pending {
		delete(r.pending, id)
		return id
	}
	return 0
}

// Run reports changed runs until ctx is done.
func (r *Reporter) Run(ctx context.Context) {
	for {
		for id := r.next(); id != 0; id = r.next() {
			r.report(ctx, id)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
	}
}

// report posts run id's status if it differs from the last one posted.
func (r *Reporter) report(ctx context.Context, id int64) {
	run, err := r.runs.GetRun(ctx, id)
	if err != nil || run.Trigger.SHA == "" {
		return // a run of no commit (manual, no sha) has nothing to report on
	}
	forge := r.forges[run.Trigger.Repo]
	if forge == nil {
		return
	}
	stages, err := r.runs.ListStages(ctx, id)
	if err != nil {
		r.opts.Log.Error("reading a run's stages for its commit status", "run", id, "err", err)
		return
	}
	s := Describe(run, stages, r.baseURL)
	key := run.Trigger.Repo + "@" + s.SHA + "/" + s.Context
	r.mu.Lock()
	last, seen := r.posted[key]
	r.mu.Unlock()
	if seen && last == s {
		return
	}
	if seen && forge.Name() == "gitlab" && last.State == s.State {
		return // GitLab refuses a transition to the state a status is in
	}
	err = r.post(ctx, forge, s, id)
	if errors.Is(err, errSuperseded) || ctx.Err() != nil {
		return // the run changed meanwhile: its newer state is reported next
	}
	if err != nil {
		r.say(ctx, id, fmt.Sprintf("commit status: could not tell %s that %s is %s: %v", forge.Name(), s.Context, s.State, err))
		r.opts.Log.Warn("commit status not reported", "run", id, "forge", forge.Name(), "state", s.State, "err", err)
		return
	}
	r.mu.Lock()
	if len(r.posted) >= maxRemembered {
		clear(r.posted) // bounded memory; at worst a status is sent again
	}
	r.posted[key] = s
	r.mu.Unlock()
	if s.State != last.State {
		r.say(ctx, id, fmt.Sprintf("commit status: %s %s on %s: %s", s.Context, s.State, forge.Name(), s.Description))
	}
}

// maxRemembered bounds how many commits' last statuses are remembered.
const maxRemembered = 10000

// say writes a line into the run's log.
func (r *Reporter) say(ctx context.Context, id int64, text string) {
	err := r.runs.AppendLogs(context.WithoutCancel(ctx), []store.LogLine{{RunID: id, Stage: "status", Attempt: 1, Time: time.Now(), Text: text}})
	if err != nil {
		r.opts.Log.Error("writing a commit status line into the run's log", "run", id, "err", err)
	}
}

// errSuperseded: the run changed while its status waited for a retry.
var errSuperseded = errors.New("superseded by a newer state")

// errPermanent is a refusal retrying cannot change (a bad token, no such commit).
var errPermanent = errors.New("refused")

// post sends s, retrying server errors and rate limits with backoff; it
// gives up early when the run has moved on (its newer state is next).
func (r *Reporter) post(ctx context.Context, forge Forge, s Status, id int64) error {
	wait := r.opts.Backoff
	var err error
	for attempt := 1; attempt <= r.opts.Attempts; attempt++ {
		var retryIn time.Duration
		retryIn, err = r.send(ctx, forge, s)
		if err == nil {
			r.opts.Count(forge.Name(), "ok")
			return nil
		}
		if errors.Is(err, errPermanent) || attempt == r.opts.Attempts {
			break
		}
		r.opts.Count(forge.Name(), "retried")
		if retryIn == 0 {
			retryIn, wait = wait, 2*wait
		}
		if retryIn > r.opts.MaxWait {
			err = fmt.Errorf("%w; the forge asks to wait %s, more than %s", err, retryIn.Round(time.Second), r.opts.MaxWait)
			break
		}
		r.say(ctx, id, fmt.Sprintf("commit status: %s answered %v; retrying in %s", forge.Name(), err, retryIn.Round(time.Millisecond)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryIn):
		}
		r.mu.Lock()
		moved := r.pending[id]
		r.mu.Unlock()
		if moved {
			return errSuperseded
		}
	}
	r.opts.Count(forge.Name(), "failed")
	return err
}

// send makes one request; retryIn is how long the forge asked to wait
// (rate limits), 0 when it did not say.
func (r *Reporter) send(ctx context.Context, forge Forge, s Status) (retryIn time.Duration, err error) {
	req, err := forge.Request(ctx, s)
	switch {
	case errors.As(err, new(transient)):
		return 0, err
	case err != nil:
		return 0, fmt.Errorf("%w: %v", errPermanent, err)
	}
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusTooManyRequests, code == http.StatusForbidden && rateLimited(resp.Header):
		return rateLimitWait(resp.Header, time.Now()), fmt.Errorf("HTTP %d (rate limited)", code)
	case code >= 500:
		return 0, fmt.Errorf("HTTP %d", code)
	case code == http.StatusUnauthorized && forgetToken(forge):
		return 0, errors.New("HTTP 401 with a token minted a while ago; minting a new one")
	default:
		return 0, fmt.Errorf("%w: HTTP %d: %s", errPermanent, code, excerpt.Of(string(body)))
	}
}

// rateLimited reports whether a 403 is GitHub's rate limit rather than a refusal.
func rateLimited(h http.Header) bool {
	return h.Get("X-RateLimit-Remaining") == "0" || h.Get("Retry-After") != ""
}

// rateLimitWait reads how long the forge asks to wait: Retry-After
// (seconds), else the reset time (epoch seconds) of GitHub's
// X-RateLimit-Reset or GitLab's RateLimit-Reset; 0 when none is given.
func rateLimitWait(h http.Header, now time.Time) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	for _, name := range []string{"X-RateLimit-Reset", "RateLimit-Reset"} {
		if epoch, err := strconv.ParseInt(h.Get(name), 10, 64); err == nil {
			if d := time.Unix(epoch, 0).Sub(now); d > 0 {
				return d
			}
			return time.Second
		}
	}
	return 0
}
