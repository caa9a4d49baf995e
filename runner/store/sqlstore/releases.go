package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// AddMeasurement stores one analysis measurement.
func (s *Store) AddMeasurement(ctx context.Context, m *store.Measurement) error {
	err := s.tx(ctx, func(tx txn) error {
		return tx.QueryRowContext(ctx, `INSERT INTO measurements (run_id, idx, weight, metric, query, value, min_bound, max_bound,
		requests, outcome, message, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			m.RunID, m.Step, m.Weight, m.Metric, m.Query, m.Value, m.Min, m.Max, m.Requests, m.Outcome, m.Message, micros(m.At)).Scan(&m.ID)
	})
	if err != nil {
		return fmt.Errorf("storing measurement %s of run %d: %w", m.Metric, m.RunID, err)
	}
	return nil
}

// ListMeasurements returns a run's measurements, oldest first.
func (s *Store) ListMeasurements(ctx context.Context, runID int64) ([]store.Measurement, error) {
	out, err := queryAll(ctx, s.db, func(row scanner) (m store.Measurement, err error) {
		var (
			at       int64
			min, max sql.NullFloat64
		)
		err = row.Scan(&m.ID, &m.RunID, &m.Step, &m.Weight, &m.Metric, &m.Query, &m.Value, &min, &max, &m.Requests, &m.Outcome, &m.Message, &at)
		if min.Valid {
			m.Min = &min.Float64
		}
		if max.Valid {
			m.Max = &max.Float64
		}
		m.At = fromMicros(at)
		return m, err
	}, `SELECT id, run_id, idx, weight, metric, query, value, min_bound, max_bound, requests, outcome, message, at
		FROM measurements WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading measurements of run %d: %w", runID, err)
	}
	return out, nil
}

const rollbackColumns = `id, run_id, app, source_sha, digest, trigger_kind, actor, reason, weight, release_commit, rollback_commit,
	evidence_json, detected_at, restored_at`

func scanRollback(row scanner) (*store.Rollback, error) {
	var (
		r                  store.Rollback
		evidence           string
		detected, restored int64
	)
	err := row.Scan(&r.ID, &r.RunID, &r.App, &r.SourceSHA, &r.Digest, &r.Trigger, &r.Actor, &r.Reason, &r.Weight,
		&r.ReleaseCommit, &r.RollbackCommit, &evidence, &detected, &restored)
	r.DetectedAt, r.RestoredAt = fromMicros(detected), fromMicros(restored)
	if err == nil && json.Unmarshal([]byte(evidence), &r.Evidence) != nil {
		// A record damaged by hand: the rollback is still shown, without
		// the evidence the engine cannot read.
		r.Evidence = release.RollbackEvidence{}
	}
	return &r, err
}

// AddRollback stores a rollback record.
func (s *Store) AddRollback(ctx context.Context, r *store.Rollback) error {
	evidence, err := json.Marshal(r.Evidence)
	if err != nil {
		return fmt.Errorf("storing the rollback of run %d: its evidence: %w", r.RunID, err)
	}
	err = s.tx(ctx, func(tx txn) error {
		return tx.QueryRowContext(ctx, `INSERT INTO rollbacks (run_id, app, source_sha, digest, trigger_kind, actor, reason, weight,
		release_commit, rollback_commit, evidence_json, detected_at, restored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id) DO UPDATE SET run_id = excluded.run_id RETURNING id`,
			r.RunID, r.App, r.SourceSHA, r.Digest, r.Trigger, r.Actor, r.Reason, r.Weight, r.ReleaseCommit, r.RollbackCommit, string(evidence),
			micros(r.DetectedAt), micros(r.RestoredAt)).Scan(&r.ID)
	})
	if err != nil {
		return fmt.Errorf("storing the rollback of run %d: %w", r.RunID, err)
	}
	return nil
}

// GetRollback returns rollback id, or store.ErrNotFound.
func (s *Store) GetRollback(ctx context.Context, id int64) (*store.Rollback, error) {
	r, err := scanRollback(s.db.QueryRowContext(ctx, `SELECT `+rollbackColumns+` FROM rollbacks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollback %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading rollback %d: %w", id, err)
	}
	return r, nil
}

// ListRollbacks returns rollbacks, newest first.
func (s *Store) ListRollbacks(ctx context.Context, f store.RollbackFilter) ([]*store.Rollback, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.App != "" {
		where, args = append(where, "app = ?"), append(args, f.App)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "detected_at >= ?"), append(args, micros(f.Since))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	out, err := queryAll(ctx, s.db, scanRollback, `SELECT `+rollbackColumns+` FROM rollbacks WHERE `+strings.Join(where, " AND ")+
		` ORDER BY detected_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("listing rollbacks: %w", err)
	}
	return out, nil
}

// CountRollbacks counts rollbacks by app and trigger.
func (s *Store) CountRollbacks(ctx context.Context) ([]store.RollbackCount, error) {
	out, err := queryAll(ctx, s.db, func(row scanner) (c store.RollbackCount, err error) {
		err = row.Scan(&c.App, &c.Trigger, &c.N)
		return c, err
	}, `SELECT app, trigger_kind, COUNT(*) FROM rollbacks GROUP BY app, trigger_kind ORDER BY app, trigger_kind`)
	if err != nil {
		return nil, fmt.Errorf("counting rollbacks: %w", err)
	}
	return out, nil
}
