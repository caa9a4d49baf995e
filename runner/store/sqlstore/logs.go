package sqlstore

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/slipwayci/slipway/runner/store"
)

// AppendLogs stores lines in one transaction and sets their Seq.
func (s *Store) AppendLogs(ctx context.Context, lines []store.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	stmts := make([]stmt, len(lines))
	for i := range lines {
		l := &lines[i]
		stmts[i] = stmt{q: `INSERT INTO logs (run_id, stage, attempt, at, text) VALUES (?, ?, ?, ?, ?) RETURNING seq`,
			args: []any{l.RunID, l.Stage, l.Attempt, micros(l.Time), l.Text}, dest: []any{&l.Seq}}
	}
	err := s.writeAll(ctx, stmts, store.Signal{Topic: store.SignalLogs, ID: lines[0].RunID})
	if err != nil {
		return fmt.Errorf("storing %d log lines of run %d: %w", len(lines), lines[0].RunID, err)
	}
	return nil
}

// ReadLogs returns up to limit lines of a run after afterSeq.
func (s *Store) ReadLogs(ctx context.Context, runID, afterSeq int64, limit int) ([]store.LogLine, error) {
	if limit <= 0 {
		limit = 1000
	}
	return s.readLogs(ctx, runID, `SELECT seq, run_id, stage, attempt, at, text FROM logs WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		afterSeq, limit)
}

// ReadLogsBefore returns the last limit lines of a run (of one stage,
// unless stage is "") before beforeSeq (0: the end), oldest first.
func (s *Store) ReadLogsBefore(ctx context.Context, runID int64, stage string, beforeSeq int64, limit int) ([]store.LogLine, error) {
	if limit <= 0 {
		limit = 1000
	}
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	q, args := `SELECT seq, run_id, stage, attempt, at, text FROM logs WHERE run_id = ? AND seq < ?`, []any{beforeSeq}
	if stage != "" {
		q, args = q+` AND stage = ?`, append(args, stage)
	}
	out, err := s.readLogs(ctx, runID, q+` ORDER BY seq DESC LIMIT ?`, append(args, limit)...)
	slices.Reverse(out)
	return out, err
}

func (s *Store) readLogs(ctx context.Context, runID int64, query string, args ...any) ([]store.LogLine, error) {
	out, err := queryAll(ctx, s.db, func(row scanner) (l store.LogLine, err error) {
		var at int64
		err = row.Scan(&l.Seq, &l.RunID, &l.Stage, &l.Attempt, &at, &l.Text)
		l.Time = fromMicros(at)
		return l, err
	}, query, append([]any{runID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("reading logs of run %d: %w", runID, err)
	}
	return out, nil
}

// AppendEvent adds an entry to a run's timeline.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) error {
	return s.autocommit(ctx, func(ctx context.Context, db querier) error { return insertEvent(ctx, db, e) })
}

func insertEvent(ctx context.Context, db querier, e store.Event) error {
	_, err := db.ExecContext(ctx, `INSERT INTO events (run_id, at, kind, message) VALUES (?, ?, ?, ?)`,
		e.RunID, micros(e.Time), e.Kind, e.Message)
	if err != nil {
		return fmt.Errorf("recording %s event of run %d: %w", e.Kind, e.RunID, err)
	}
	return nil
}

// ListEvents returns a run's timeline, oldest first.
func (s *Store) ListEvents(ctx context.Context, runID int64) ([]store.Event, error) {
	out, err := queryAll(ctx, s.db, func(row scanner) (e store.Event, err error) {
		var at int64
		err = row.Scan(&e.RunID, &at, &e.Kind, &e.Message)
		e.Time = fromMicros(at)
		return e, err
	}, `SELECT run_id, at, kind, message FROM events WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading events of run %d: %w", runID, err)
	}
	return out, nil
}
