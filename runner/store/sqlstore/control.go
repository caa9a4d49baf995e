package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// SaveRelease creates or replaces a release checkpoint.
func (s *Store) SaveRelease(ctx context.Context, r *store.Release) error {
	data := string(r.Data)
	if data == "" {
		data = "null"
	}
	_, err := s.exec(ctx, `INSERT INTO releases (run_id, app, state, step, weight, reason, data_json, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET app = excluded.app, state = excluded.state,
		step = excluded.step, weight = excluded.weight, reason = excluded.reason, data_json = excluded.data_json,
		updated_at = excluded.updated_at`, r.RunID, r.App, r.State, r.Step, r.Weight, r.Reason, data, micros(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("saving the release of run %d: %w", r.RunID, err)
	}
	return nil
}

const releaseColumns = `run_id, app, state, step, weight, reason, data_json, updated_at`

func scanRelease(row scanner) (*store.Release, error) {
	var (
		r       store.Release
		data    string
		updated int64
	)
	err := row.Scan(&r.RunID, &r.App, &r.State, &r.Step, &r.Weight, &r.Reason, &data, &updated)
	r.Data, r.UpdatedAt = []byte(data), fromMicros(updated)
	return &r, err
}

// GetRelease returns the checkpoint of a run, or store.ErrNotFound.
func (s *Store) GetRelease(ctx context.Context, runID int64) (*store.Release, error) {
	r, err := scanRelease(s.db.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release of run %d: %w", runID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the release of run %d: %w", runID, err)
	}
	return r, nil
}

// ListReleases returns checkpoints, newest first.
func (s *Store) ListReleases(ctx context.Context, app string, inFlight bool) ([]*store.Release, error) {
	where, args := []string{"1 = 1"}, []any{}
	if app != "" {
		where, args = append(where, "app = ?"), append(args, app)
	}
	if inFlight {
		where = append(where, "state NOT IN (?"+strings.Repeat(", ?", len(release.Final)-1)+")")
		for _, d := range release.Final {
			args = append(args, string(d))
		}
		// a release whose run ended (failed after crashes, say) is not in flight either
		where = append(where, "run_id IN (SELECT id FROM runs WHERE status IN ('queued', 'running'))")
	}
	out, err := queryAll(ctx, s.db, scanRelease, `SELECT `+releaseColumns+` FROM releases WHERE `+strings.Join(where, " AND ")+
		` ORDER BY run_id DESC LIMIT 100`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing releases: %w", err)
	}
	return out, nil
}

// AddCommand queues a command for a release and writes its audit entries
// in the same transaction: a command is never queued unaudited.
func (s *Store) AddCommand(ctx context.Context, c *store.Command, audit ...store.AuditEntry) error {
	detail := string(c.Detail)
	if detail == "" {
		detail = "null"
	}
	return s.tx(ctx, func(tx txn) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO release_commands (run_id, command, actor, detail_json, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, c.RunID, c.Name, c.Actor, detail, micros(c.CreatedAt)).Scan(&c.ID)
		if err != nil {
			return fmt.Errorf("queueing %s for run %d: %w", c.Name, c.RunID, err)
		}
		for _, e := range audit {
			if err := appendAudit(ctx, tx, e); err != nil {
				return err
			}
		}
		return tx.signal(ctx, store.Signal{Topic: store.SignalCommand, ID: c.RunID})
	})
}

// TakeCommand returns the oldest untaken command of a run and marks it
// taken, in one transaction.
func (s *Store) TakeCommand(ctx context.Context, runID int64, at time.Time) (*store.Command, error) {
	// One guarded statement: a command taken by another engine a moment
	// before is not taken again (consumed_at is no longer 0).
	var (
		c       store.Command
		detail  string
		created int64
	)
	err := s.tx(ctx, func(tx txn) error {
		return tx.QueryRowContext(ctx, `UPDATE release_commands SET consumed_at = ?
		WHERE id = (SELECT id FROM release_commands WHERE run_id = ? AND consumed_at = 0 ORDER BY id LIMIT 1) AND consumed_at = 0
		RETURNING id, run_id, command, actor, detail_json, created_at`, micros(at), runID).
			Scan(&c.ID, &c.RunID, &c.Name, &c.Actor, &detail, &created)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("taking a command of run %d: %w", runID, err)
	}
	c.Detail, c.CreatedAt = []byte(detail), fromMicros(created)
	return &c, nil
}
