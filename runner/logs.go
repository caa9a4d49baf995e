package runner

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// MaxLineLength is the longest log line stored; longer lines are split.
const MaxLineLength = 64 << 10

// sink is a stage attempt's log: it buffers partial lines, masks secrets
// in each complete line, stores it with a timestamp and wakes followers.
// It is safe for concurrent use. Lines are stored on a context that is not
// cancelled with the run, so what a cancelled stage printed is kept.
type sink struct {
	ctx     context.Context
	store   store.Logs
	notes   *notifier
	mask    *masker
	log     *slog.Logger
	runID   int64
	stage   string
	attempt int

	mu  sync.Mutex
	buf []byte
}

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
		lines = append(lines, string(s.buf[:i]))
		s.buf = s.buf[i+1:]
	}
	for len(s.buf) >= MaxLineLength {
		lines = append(lines, string(s.buf[:MaxLineLength]))
		s.buf = s.buf[MaxLineLength:]
	}
	return len(p), s.persist(lines)
}

// Close stores what is left of an unterminated last line.
func (s *sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) == 0 {
		return nil
	}
	line := string(s.buf)
	s.buf = nil
	return s.persist([]string{line})
}

func (s *sink) persist(texts []string) error {
	if len(texts) == 0 {
		return nil
	}
	now := time.Now()
	lines := make([]store.LogLine, 0, len(texts))
	for _, t := range texts {
		for len(t) > MaxLineLength {
			lines = append(lines, s.line(now, t[:MaxLineLength]))
			t = t[MaxLineLength:]
		}
		lines = append(lines, s.line(now, t))
	}
	if err := s.store.AppendLogs(s.ctx, lines); err != nil {
		s.log.Error("storing stage log", "run", s.runID, "stage", s.stage, "err", err)
		return err
	}
	s.notes.notify(s.runID)
	return nil
}

func (s *sink) line(at time.Time, text string) store.LogLine {
	text = string(bytes.TrimRight([]byte(text), "\r"))
	return store.LogLine{RunID: s.runID, Stage: s.stage, Attempt: s.attempt, Time: at, Text: s.mask.Mask(text)}
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
