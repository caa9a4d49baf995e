package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

const runColumns = `id, pipeline, app, pipeline_file, pipeline_source, workdir, trigger_json, grp, policy,
	status, reason, resumes, created_at, started_at, finished_at, dedup_key, untrusted, owner, lease_until`

// CreateRun stores a new run with its pending stages and its event
// (store.Runs).
func (s *Store) CreateRun(ctx context.Context, nr *store.NewRun) error {
	if err := s.tx(ctx, func(tx txn) error { return createRun(ctx, tx, nr) }); err != nil {
		return err
	}
	if !nr.Created {
		return fmt.Errorf("creating run with key %s: %w (run %d)", nr.Run.DedupKey, store.ErrDuplicate, nr.Run.ID)
	}
	return nil
}

// createRun inserts nr's run, stages and event, unless a run with its
// DedupKey exists (whichever engine raced it there): then it writes
// nothing, and nr says so and holds that run's ID.
func createRun(ctx context.Context, tx txn, nr *store.NewRun) error {
	r := nr.Run
	trig, err := json.Marshal(r.Trigger)
	if err != nil {
		return fmt.Errorf("creating run: encoding trigger: %w", err)
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO runs (pipeline, app, pipeline_file, pipeline_source, workdir,
		trigger_json, grp, policy, status, reason, resumes, created_at, started_at, finished_at, dedup_key, untrusted)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)
		ON CONFLICT (dedup_key) WHERE dedup_key <> '' DO NOTHING RETURNING id`,
		r.Pipeline, r.App, r.PipelineFile, string(r.PipelineSource), r.Workdir, string(trig), r.Group, r.Policy,
		r.Status, r.Reason, r.Resumes, micros(r.CreatedAt), r.DedupKey, r.Untrusted).Scan(&r.ID)
	if errors.Is(err, sql.ErrNoRows) {
		nr.Created = false
		if err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE dedup_key = ?`, r.DedupKey).Scan(&r.ID); err != nil {
			return fmt.Errorf("finding the run with key %s: %w", r.DedupKey, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating run of %s: %w", r.Pipeline, err)
	}
	nr.Created = true
	for _, st := range nr.Stages {
		_, err := tx.ExecContext(ctx, `INSERT INTO stages (run_id, idx, name, kind, status, attempts, error,
			outputs_json, started_at, finished_at) VALUES (?, ?, ?, ?, ?, 0, '', '{}', 0, 0)`,
			r.ID, st.Index, st.Name, st.Kind, store.StagePending)
		if err != nil {
			return fmt.Errorf("creating stage %s of run %d: %w", st.Name, r.ID, err)
		}
	}
	if e := nr.Event; e.Kind != "" {
		nr.Event.RunID = r.ID
		if err := insertEvent(ctx, tx, nr.Event); err != nil {
			return err
		}
	}
	return tx.signal(ctx, store.Signal{Topic: store.SignalQueued, ID: r.ID})
}

func scanRun(row scanner) (*store.Run, error) {
	var (
		r                          store.Run
		source, trig               string
		created, started, finished int64
		leaseUntil                 int64
	)
	err := row.Scan(&r.ID, &r.Pipeline, &r.App, &r.PipelineFile, &source, &r.Workdir, &trig, &r.Group, &r.Policy,
		&r.Status, &r.Reason, &r.Resumes, &created, &started, &finished, &r.DedupKey, &r.Untrusted, &r.Owner, &leaseUntil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(trig), &r.Trigger); err != nil {
		return nil, fmt.Errorf("decoding trigger of run %d: %w", r.ID, err)
	}
	r.PipelineSource = []byte(source)
	r.CreatedAt, r.StartedAt, r.FinishedAt = fromMicros(created), fromMicros(started), fromMicros(finished)
	r.LeaseUntil = fromMicros(leaseUntil)
	return &r, nil
}

// GetRun returns run id, or store.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id int64) (*store.Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading run %d: %w", id, err)
	}
	return r, nil
}

// RunByKey returns the run created with a deduplication key.
func (s *Store) RunByKey(ctx context.Context, key string) (*store.Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE dedup_key = ? AND dedup_key <> ''`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run with key %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading run with key %s: %w", key, err)
	}
	return r, nil
}

// CountRuns counts runs by status, of apps (none: of every app).
func (s *Store) CountRuns(ctx context.Context, apps []string) (map[store.RunStatus]int, error) {
	q, args := `SELECT status, COUNT(*) FROM runs`, []any{}
	if len(apps) > 0 {
		q += ` WHERE app IN (?` + strings.Repeat(`, ?`, len(apps)-1) + `)`
		for _, a := range apps {
			args = append(args, a)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` GROUP BY status`, args...)
	if err != nil {
		return nil, fmt.Errorf("counting runs: %w", err)
	}
	defer rows.Close()
	out := map[store.RunStatus]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("counting runs: %w", err)
		}
		out[store.RunStatus(st)] = n
	}
	return out, rows.Err()
}

// ListRuns returns runs matching f, newest first.
func (s *Store) ListRuns(ctx context.Context, f store.RunFilter) ([]*store.Run, error) {
	var (
		where []string
		args  []any
	)
	if f.Pipeline != "" {
		where, args = append(where, "pipeline = ?"), append(args, f.Pipeline)
	}
	if f.Group != "" {
		where, args = append(where, "grp = ?"), append(args, f.Group)
	}
	if len(f.Status) > 0 {
		marks, vals := in(f.Status)
		where, args = append(where, "status IN ("+marks+")"), append(args, vals...)
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q += " ORDER BY id DESC LIMIT ?"
	runs, err := queryAll(ctx, s.db, scanRun, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	return runs, nil
}

// TransitionRun moves run id from one of `from` to `to`. Entering running
// for the first time sets started_at; entering a final status sets
// finished_at; going back to queued (a resume) counts a resume.
func (s *Store) TransitionRun(ctx context.Context, id int64, from []store.RunStatus, to store.RunStatus, reason string, at time.Time) (bool, error) {
	marks, vals := in(from)
	set, args := "status = ?, reason = ?", []any{to, reason}
	switch {
	case to == store.RunRunning:
		set, args = set+", started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END", append(args, micros(at))
	case to.Done():
		set, args = set+", finished_at = ?, owner = '', lease_until = 0", append(args, micros(at))
	case to == store.RunQueued:
		set += ", resumes = resumes + 1, owner = '', lease_until = 0"
	}
	args = append(append(args, id), vals...)
	moved := false
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET `+set+` WHERE id = ? AND status IN (`+marks+`)`, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		moved = true
		if err := insertEvent(ctx, tx, store.Event{RunID: id, Time: at, Kind: string(to), Message: reason}); err != nil {
			return err
		}
		topic := store.SignalRun
		switch {
		case to == store.RunQueued:
			topic = store.SignalQueued
		case to.Done():
			topic = store.SignalEnded
		}
		return tx.signal(ctx, store.Signal{Topic: topic, ID: id})
	})
	if err != nil {
		return false, fmt.Errorf("moving run %d to %s: %w", id, to, err)
	}
	return moved, nil
}

// ClaimNext takes the oldest queued run allowed to start and marks it running.
func (s *Store) ClaimNext(ctx context.Context, at time.Time, lease store.Lease) (*store.Run, error) {
	var claimed *store.Run
	err := s.tx(ctx, func(tx txn) error {
		// Which run may start depends on the other runs of its group:
		// claims are serialized across engines sharing the database.
		if err := tx.lock(ctx, "slipway claim"); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT r.id FROM runs r WHERE r.status = ? AND (r.grp = '' OR NOT EXISTS (
				SELECT 1 FROM runs o WHERE o.grp = r.grp AND o.id <> r.id
				AND (o.status = ? OR (o.status = ? AND o.id < r.id))))
			ORDER BY r.id LIMIT 1`, store.RunQueued, store.RunRunning, store.RunQueued).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		claimed, err = scanRun(tx.QueryRowContext(ctx, `UPDATE runs SET status = ?, started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END,
			owner = ?, lease_until = ? WHERE id = ? RETURNING `+runColumns, store.RunRunning, micros(at), lease.Owner, micros(lease.Until), id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming the next queued run: %w", err)
	}
	return claimed, nil
}

// RenewLeases extends owner's leases on its running runs.
func (s *Store) RenewLeases(ctx context.Context, owner string, until time.Time) ([]int64, error) {
	var ids []int64
	err := s.tx(ctx, func(tx txn) (err error) {
		ids, err = queryAll(ctx, tx, func(row scanner) (id int64, err error) { return id, row.Scan(&id) },
			`UPDATE runs SET lease_until = ? WHERE owner = ? AND status = ? RETURNING id`, micros(until), owner, store.RunRunning)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("renewing the leases of %s: %w", owner, err)
	}
	return ids, nil
}

// TakeExpired leases a running run whose lease ended to another owner.
func (s *Store) TakeExpired(ctx context.Context, id int64, at time.Time, lease store.Lease) (bool, error) {
	res, err := s.exec(ctx, `UPDATE runs SET owner = ?, lease_until = ? WHERE id = ? AND status = ? AND lease_until < ?`,
		lease.Owner, micros(lease.Until), id, store.RunRunning, micros(at))
	if err != nil {
		return false, fmt.Errorf("taking over run %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
