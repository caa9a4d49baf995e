package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// ListStages returns the stages of a run in pipeline order.
func (s *Store) ListStages(ctx context.Context, runID int64) ([]*store.Stage, error) {
	out, err := queryAll(ctx, s.db, scanStage, `SELECT run_id, idx, name, kind, status, attempts, error, outputs_json,
		started_at, finished_at FROM stages WHERE run_id = ? ORDER BY idx`, runID)
	if err != nil {
		return nil, fmt.Errorf("listing stages of run %d: %w", runID, err)
	}
	return out, nil
}

func scanStage(row scanner) (*store.Stage, error) {
	var (
		st                store.Stage
		outputs           string
		started, finished int64
	)
	if err := row.Scan(&st.RunID, &st.Index, &st.Name, &st.Kind, &st.Status, &st.Attempts, &st.Error,
		&outputs, &started, &finished); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(outputs), &st.Outputs); err != nil {
		return nil, fmt.Errorf("decoding outputs of stage %s: %w", st.Name, err)
	}
	st.StartedAt, st.FinishedAt = fromMicros(started), fromMicros(finished)
	return &st, nil
}

// ListAttempts returns every attempt of a run, by stage then attempt.
func (s *Store) ListAttempts(ctx context.Context, runID int64) ([]*store.Attempt, error) {
	out, err := queryAll(ctx, s.db, scanAttempt, `SELECT run_id, idx, attempt, status, error, started_at, finished_at
		FROM attempts WHERE run_id = ? ORDER BY idx, attempt`, runID)
	if err != nil {
		return nil, fmt.Errorf("listing attempts of run %d: %w", runID, err)
	}
	return out, nil
}

func scanAttempt(row scanner) (*store.Attempt, error) {
	var (
		a                 store.Attempt
		started, finished int64
	)
	if err := row.Scan(&a.RunID, &a.Index, &a.Attempt, &a.Status, &a.Error, &started, &finished); err != nil {
		return nil, err
	}
	a.StartedAt, a.FinishedAt = fromMicros(started), fromMicros(finished)
	return &a, nil
}

// StartAttempt records the start of an attempt; repeating it is harmless.
func (s *Store) StartAttempt(ctx context.Context, runID int64, index, n int, at time.Time) error {
	err := s.writeAll(ctx, []stmt{
		{q: `INSERT INTO attempts (run_id, idx, attempt, status, error, started_at, finished_at)
			VALUES (?, ?, ?, ?, '', ?, 0) ON CONFLICT (run_id, idx, attempt) DO NOTHING`,
			args: []any{runID, index, n, store.StageRunning, micros(at)}},
		{q: `UPDATE stages SET status = ?, attempts = ?, error = '',
			started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END WHERE run_id = ? AND idx = ?`,
			args: []any{store.StageRunning, n, micros(at), runID, index}},
	})
	if err != nil {
		return fmt.Errorf("recording start of attempt %d of stage %d of run %d: %w", n, index, runID, err)
	}
	return nil
}

// FinishAttempt records how an attempt ended, and its stage with it.
func (s *Store) FinishAttempt(ctx context.Context, runID int64, index, n int, status store.StageStatus, errMsg string, outputs map[string]string, at time.Time) error {
	if outputs == nil {
		outputs = map[string]string{}
	}
	out, err := json.Marshal(outputs)
	if err != nil {
		return fmt.Errorf("encoding outputs: %w", err)
	}
	err = s.writeAll(ctx, []stmt{
		{q: `UPDATE attempts SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND idx = ? AND attempt = ?`,
			args: []any{status, errMsg, micros(at), runID, index, n}},
		{q: `UPDATE stages SET status = ?, error = ?, outputs_json = ?, finished_at = ? WHERE run_id = ? AND idx = ?`,
			args: []any{status, errMsg, string(out), micros(at), runID, index}},
	})
	if err != nil {
		return fmt.Errorf("recording end of attempt %d of stage %d of run %d: %w", n, index, runID, err)
	}
	return nil
}

// SetStageStatus sets a stage's status when no attempt is involved.
func (s *Store) SetStageStatus(ctx context.Context, runID int64, index int, status store.StageStatus, reason string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE stages SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND idx = ?`,
		status, reason, micros(at), runID, index)
	if err != nil {
		return fmt.Errorf("setting stage %d of run %d to %s: %w", index, runID, status, err)
	}
	return nil
}

// SkipPending marks the run's stages that never started as skipped.
func (s *Store) SkipPending(ctx context.Context, runID int64, reason string, at time.Time) error {
	if !s.d.pipelines {
		// On SQLite a write waits for the one writer and a commit, where
		// a read waits for nothing; most runs end with no stage pending.
		var pending bool
		err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM stages WHERE run_id = ? AND status = ?)`,
			runID, store.StagePending).Scan(&pending)
		if err != nil {
			return fmt.Errorf("looking for the stages of run %d that never started: %w", runID, err)
		}
		if !pending {
			return nil
		}
	}
	_, err := s.exec(ctx, `UPDATE stages SET status = ?, error = ?, finished_at = ? WHERE run_id = ? AND status = ?`,
		store.StageSkipped, reason, micros(at), runID, store.StagePending)
	if err != nil {
		return fmt.Errorf("skipping the stages of run %d that never started: %w", runID, err)
	}
	return nil
}
