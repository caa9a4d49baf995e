package runner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// MaxLineLength is the longest log line stored; longer lines are split.
const MaxLineLength = 64 << 10

// DefaultMaxLogBytes is how much of one stage attempt's output is kept
// (WithMaxLogBytes changes it); the rest is dropped after a marker line.
const DefaultMaxLogBytes = 32 << 20

// DefaultMaxRunLogBytes is how much of all a run's stages' output is kept
// (WithMaxRunLogBytes changes it): a pipeline of many stages, or a stage
// retried, writes no more than this into the store.
const DefaultMaxRunLogBytes = 128 << 20

// maxPendingLogBytes bounds the lines held back while the store refuses
// them; past it the oldest are dropped (and counted).
const maxPendingLogBytes = 8 << 20

// sink is a stage attempt's log: it buffers partial lines, masks secrets
// in each complete line (before splitting long ones, so a secret is never
// cut in two), stores it with a timestamp (a burst of lines together, see
// storeEvery) and wakes followers. It is safe
// for concurrent use. Lines are stored on a context that is not cancelled
// with the run, so what a cancelled stage printed is kept.
//
// Write never fails: the process whose output this is must not die of a
// closed pipe because the store hiccuped. Lines the store refuses are
// retried at the next store and at Close, then dropped and counted.
type sink struct {
	ctx   context.Context
	store interface {
		AppendLogs(ctx context.Context, lines []store.LogLine) error
	}
	notes    *notifier
	mask     *masker
	log      *slog.Logger
	observer Observer
	runID    int64
	stage    string
	attempt  int
	limit    int64         // bytes of text kept; 0: DefaultMaxLogBytes
	runLeft  *atomic.Int64 // bytes the run's logs may still keep; nil: no bound
	runLimit int64

	mu        sync.Mutex
	buf       []byte
	kept      int64 // bytes of text stored or pending
	truncated bool
	pending   []store.LogLine
	pendBytes int
	stored    time.Time   // when pending lines were last sent to the store
	held      *time.Timer // sends the lines held since then
	closed    bool
}

// A line written after a pause is stored at once. Lines written within
// storeEvery of the last store are held and stored together storeEvery
// after it, or at once when they reach storeBytes: a tool printing a
// burst of lines costs the store one write per storeEvery, not one per
// line, and followers see a burst's lines at most storeEvery late.
const (
	storeEvery = 100 * time.Millisecond
	storeBytes = 256 << 10
)

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	var lines []string
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, s.mask.Mask(string(s.buf[:i])))
		s.buf = s.buf[i+1:]
	}
	// A line with no end yet: cut it where no secret spans the cut, once
	// enough follows the cut to see any secret that would.
	overlap := min(s.mask.longestForm(), MaxLineLength/2)
	for len(s.buf) >= MaxLineLength+overlap {
		cut := s.mask.safeCut(string(s.buf[:MaxLineLength+overlap]), MaxLineLength)
		if cut == 0 {
			cut = MaxLineLength
		}
		lines = append(lines, s.mask.Mask(string(s.buf[:cut])))
		s.buf = s.buf[cut:]
	}
	s.persist(lines, false)
	return len(p), nil
}

// Close stores what is left of an unterminated last line, and retries
// what the store refused before.
func (s *sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	if len(s.buf) > 0 {
		lines = append(lines, s.mask.Mask(string(s.buf)))
		s.buf = nil
	}
	s.persist(lines, true)
	s.closed = true
	return nil
}

// persist holds masked texts (split to MaxLineLength), within the
// attempt's cap, and stores them now or soon (storeEvery); when closing,
// now.
func (s *sink) persist(texts []string, closing bool) {
	now := time.Now()
	limit := s.limit
	if limit <= 0 {
		limit = DefaultMaxLogBytes
	}
	for _, t := range texts {
		for first := true; first || len(t) > 0; first = false {
			chunk := t[:min(len(t), MaxLineLength)]
			t = t[len(chunk):]
			if s.truncated {
				continue
			}
			switch {
			case s.kept+int64(len(chunk)) > limit:
				s.truncated = true
				chunk = fmt.Sprintf("slipway: log truncated: this attempt wrote more than %d bytes; the rest of its output is not kept", limit)
			case s.runLeft != nil && s.runLeft.Add(-int64(len(chunk))) < 0:
				s.truncated = true
				chunk = fmt.Sprintf("slipway: log truncated: this run's stages wrote more than %d bytes; the rest of this attempt's output is not kept", s.runLimit)
			}
			s.kept += int64(len(chunk))
			s.hold(s.line(now, chunk))
		}
	}
	switch {
	case closing || s.pendBytes >= storeBytes || time.Since(s.stored) >= storeEvery:
		s.send(closing)
	case s.held == nil && len(s.pending) > 0:
		s.held = time.AfterFunc(storeEvery-time.Since(s.stored), s.storeHeld)
	}
}

// storeHeld stores the lines held since the last store.
func (s *sink) storeHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = nil
	if !s.closed {
		s.send(false)
	}
}

// send sends the pending lines to the store. When closing, lines it
// refuses are retried a few times before they are dropped.
func (s *sink) send(closing bool) {
	if s.held != nil {
		s.held.Stop()
		s.held = nil
	}
	if len(s.pending) == 0 {
		return
	}
	s.stored = time.Now()
	for try := 0; len(s.pending) > 0; try++ {
		err := s.store.AppendLogs(s.ctx, s.pending)
		if err == nil {
			s.pending, s.pendBytes = nil, 0
			s.notes.notify(s.runID)
			return
		}
		if !closing || try == 2 {
			s.log.Error("storing stage log", "run", s.runID, "stage", s.stage, "pending_lines", len(s.pending), "err", err)
			if closing {
				s.drop(len(s.pending))
				s.pending, s.pendBytes = nil, 0
			}
			return
		}
		select {
		case <-time.After(time.Duration(100<<try) * time.Millisecond):
		case <-s.ctx.Done():
		}
	}
}

// hold queues a line for the store, dropping the oldest held lines when
// the store has refused too much.
func (s *sink) hold(l store.LogLine) {
	s.pending = append(s.pending, l)
	s.pendBytes += len(l.Text)
	n := 0
	for s.pendBytes > maxPendingLogBytes && n < len(s.pending)-1 {
		s.pendBytes -= len(s.pending[n].Text)
		n++
	}
	if n > 0 {
		s.pending = s.pending[n:]
		s.drop(n)
	}
}

// drop counts n lines lost to the store's refusals.
func (s *sink) drop(n int) {
	if s.observer != nil {
		s.observer.LogLinesDropped(n)
	}
}

func (s *sink) line(at time.Time, text string) store.LogLine {
	text = strings.TrimRight(text, "\r")
	return store.LogLine{RunID: s.runID, Stage: s.stage, Attempt: s.attempt, Time: at, Text: text}
}

// notifier wakes those waiting on a run: new log lines, a new status.
type notifier struct {
	mu sync.Mutex
	ch map[int64]chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: map[int64]chan struct{}{}} }

// wait returns a channel closed at the next notify for run id. Take it
// before reading state, so a change between the read and the wait is not missed.
func (n *notifier) wait(id int64) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.ch[id]
	if !ok {
		c = make(chan struct{})
		n.ch[id] = c
	}
	return c
}

func (n *notifier) notifyAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, c := range n.ch {
		close(c)
		delete(n.ch, id)
	}
}

func (n *notifier) notify(id int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.ch[id]; ok {
		close(c)
		delete(n.ch, id)
	}
}

// pollInterval bounds how long a follower waits when the change comes from
// another process sharing the store (no in-process notification).
const pollInterval = time.Second

// Follow calls fn with each log line of run id after afterSeq, in order,
// as they are written, and returns once the run has finished and every
// line has been delivered, or when ctx is done, or when fn fails.
func (r *Runner) Follow(ctx context.Context, id, afterSeq int64, fn func(store.LogLine) error) error {
	const batch = 500
	for {
		wake := r.notes.wait(id)
		run, err := r.store.GetRun(ctx, id)
		if err != nil {
			return err
		}
		lines, err := r.store.ReadLogs(ctx, id, afterSeq, batch)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if err := fn(l); err != nil {
				return err
			}
			afterSeq = l.Seq
		}
		if len(lines) == batch {
			continue
		}
		if run.Status.Done() {
			return nil // the status was read before the lines: nothing can follow them
		}
		if err := sleepUntil(ctx, wake, pollInterval); err != nil {
			return err
		}
	}
}

// sleepUntil waits for wake, d, or ctx, whichever comes first.
func sleepUntil(ctx context.Context, wake <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-t.C:
	}
	return nil
}

// WithMaxRunLogBytes caps what the logs of all of one run's stage
// attempts keep together (default DefaultMaxRunLogBytes); past it, each
// attempt's log says the rest was dropped.
func WithMaxRunLogBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxRunLogBytes(%d): must be positive", n)
		}
		o.maxRunLogBytes = n
		return nil
	}
}

// LogBudget is what an Admission may also say: how many bytes the logs of
// a run's stages may keep together, below the engine's own cap (0: the
// engine's). The engine's grants say it per repository, for pipelines
// read from one.
type LogBudget interface {
	RunLogBytes(run *store.Run) int64
}

// logBudget is a new run's log budget, and what it started at.
func (r *Runner) logBudget(run *store.Run) (*atomic.Int64, int64) {
	limit := r.opts.maxRunLogBytes
	if b, ok := r.opts.admission.(LogBudget); ok {
		if n := b.RunLogBytes(run); n > 0 && n < limit {
			limit = n
		}
	}
	left := &atomic.Int64{}
	left.Store(limit)
	return left, limit
}
