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
	status, reason, resumes, created_at, started_at, finished_at, dedup_key, untrusted, owner, lease_until, slot, slots, epoch`

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

// runInsert inserts a run (runArgs), returning its ID. createRun adds
// onDuplicateKey; the one-statement delivery (recordAtOnce) does not: a
// run whose key exists must fail it.
const (
	runInsert = `INSERT INTO runs (pipeline, app, pipeline_file, pipeline_source, workdir,
		trigger_json, grp, policy, status, reason, resumes, created_at, started_at, finished_at, dedup_key, untrusted, slot, slots)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`
	onDuplicateKey = ` ON CONFLICT (dedup_key) WHERE dedup_key <> '' DO NOTHING`
)

// runArgs are runInsert's arguments for r.
func runArgs(r *store.Run) ([]any, error) {
	trig, err := json.Marshal(r.Trigger)
	if err != nil {
		return nil, fmt.Errorf("creating run: encoding trigger: %w", err)
	}
	return []any{r.Pipeline, r.App, r.PipelineFile, string(r.PipelineSource), r.Workdir, string(trig), r.Group, r.Policy,
		r.Status, r.Reason, r.Resumes, micros(r.CreatedAt), micros(r.FinishedAt), r.DedupKey, r.Untrusted, r.Slot, r.Slots}, nil
}

// createdSignal is what a new run signals: queued, or ended for a run
// born in its final state (refused), which no claim can take.
func createdSignal(r *store.Run) store.Signal {
	if r.Status.Done() {
		return store.Signal{Topic: store.SignalEnded, ID: r.ID}
	}
	return store.Signal{Topic: store.SignalQueued, ID: r.ID}
}

// stageRow is a new stage's status, error and end as stored: pending
// unless the run was created ended.
func stageRow(st store.Stage) (store.StageStatus, string, int64) {
	if st.Status == "" {
		return store.StagePending, "", 0
	}
	return st.Status, st.Error, micros(st.FinishedAt)
}

// createRun inserts nr's run, stages and event, unless a run with its
// DedupKey exists (whichever engine raced it there): then it writes
// nothing, and nr says so and holds that run's ID.
func createRun(ctx context.Context, tx txn, nr *store.NewRun) error {
	r := nr.Run
	args, err := runArgs(r)
	if err != nil {
		return err
	}
	insert := runInsert + onDuplicateKey + ` RETURNING id`
	if tx.db.d.pipelines {
		ctes, ctesArgs := runCTEs("", nr, insert, args)
		err = tx.QueryRowContext(ctx, `WITH `+ctes+` SELECT id FROM run`, ctesArgs...).Scan(&r.ID)
	} else {
		err = tx.QueryRowContext(ctx, insert, args...).Scan(&r.ID)
	}
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
	if tx.db.d.pipelines {
		nr.Event.RunID = r.ID
		return tx.signal(ctx, createdSignal(r)) // the rest was written at once
	}
	for _, st := range nr.Stages {
		status, why, ended := stageRow(st)
		_, err := tx.ExecContext(ctx, `INSERT INTO stages (run_id, idx, name, kind, status, attempts, error,
			outputs_json, started_at, finished_at) VALUES (?, ?, ?, ?, ?, 0, ?, '{}', 0, ?)`,
			r.ID, st.Index, st.Name, st.Kind, status, why, ended)
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
	return tx.signal(ctx, createdSignal(r))
}

// runCTEs are createRun's writes as the common table expressions of one
// PostgreSQL statement, with their arguments: the run (insert, its
// arguments), as "run"+suffix, then its stages and its event, written
// only if the run was inserted.
func runCTEs(suffix string, nr *store.NewRun, insert string, args []any) (string, []any) {
	n := len(nr.Stages)
	var (
		idx                   = make([]int32, n)
		names, kinds          = make([]string, n), make([]string, n)
		statuses, errs, ended = make([]string, n), make([]string, n), make([]int64, n)
		e                     = nr.Event
	)
	for i, st := range nr.Stages {
		idx[i], names[i], kinds[i] = int32(st.Index), cleanText(st.Name), cleanText(st.Kind)
		var status store.StageStatus
		status, errs[i], ended[i] = stageRow(st)
		statuses[i], errs[i] = string(status), cleanText(errs[i])
	}
	args = append(args, idx, names, kinds, statuses, errs, ended, micros(e.Time), e.Kind, e.Message, e.Kind)
	return fmt.Sprintf(`run%[1]s AS (%[2]s),
		stages%[1]s AS (INSERT INTO stages (run_id, idx, name, kind, status, attempts, error, outputs_json, started_at, finished_at)
			SELECT run%[1]s.id, s.idx, s.name, s.kind, s.status, 0, s.error, '{}', 0, s.ended
			FROM run%[1]s, unnest(?::integer[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[]) AS s (idx, name, kind, status, error, ended)),
		event%[1]s AS (INSERT INTO events (run_id, at, kind, message) SELECT id, ?, ?, ? FROM run%[1]s WHERE ? <> '')`, suffix, insert), args
}

func scanRun(row scanner) (*store.Run, error) {
	var (
		r                          store.Run
		source, trig               string
		created, started, finished int64
		leaseUntil                 int64
	)
	err := row.Scan(&r.ID, &r.Pipeline, &r.App, &r.PipelineFile, &source, &r.Workdir, &trig, &r.Group, &r.Policy,
		&r.Status, &r.Reason, &r.Resumes, &created, &started, &finished, &r.DedupKey, &r.Untrusted, &r.Owner, &leaseUntil, &r.Slot, &r.Slots, &r.Epoch)
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
	if f.Repository != "" {
		where, args = append(where, "slot = ?"), append(args, store.RepositorySlot(f.Repository))
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
	topic := store.SignalRun
	switch {
	case to == store.RunQueued:
		topic = store.SignalQueued
	case to.Done():
		topic = store.SignalEnded
	}
	sig := store.Signal{Topic: topic, ID: id}
	event := store.Event{RunID: id, Time: at, Kind: string(to), Message: reason}
	moved := false
	var err error
	if s.d.pipelines {
		moved, err = s.transitionAtOnce(ctx, set, marks, args, event, sig)
	} else {
		err = s.tx(ctx, func(tx txn) error {
			res, err := tx.ExecContext(ctx, `UPDATE runs SET `+set+` WHERE id = ? AND status IN (`+marks+`)`, args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return err
			}
			moved = true
			if err := insertEvent(ctx, tx, event); err != nil {
				return err
			}
			return tx.signal(ctx, sig)
		})
	}
	if err != nil {
		return false, fmt.Errorf("moving run %d to %s: %w", id, to, err)
	}
	return moved, nil
}

// transitionAtOnce is TransitionRun's transaction as one PostgreSQL
// statement: the guarded update and, only if it moved the run, its event;
// then the signal.
func (s *Store) transitionAtOnce(ctx context.Context, set, marks string, args []any, e store.Event, sig store.Signal) (bool, error) {
	args = append(args, micros(e.Time), e.Kind, e.Message)
	var moved int
	err := s.autocommit(ctx, func(ctx context.Context, db querier) error {
		return db.QueryRowContext(ctx, `WITH moved AS (UPDATE runs SET `+set+` WHERE id = ? AND status IN (`+marks+`) RETURNING id),
			event AS (INSERT INTO events (run_id, at, kind, message) SELECT id, ?, ?, ? FROM moved)
			SELECT count(*) FROM moved`, args...).Scan(&moved)
	})
	if err == nil && moved == 1 {
		s.publish(sig)
	}
	return moved == 1, err
}

// ClaimNext takes the oldest queued run allowed to start and marks it running.
func (s *Store) ClaimNext(ctx context.Context, at time.Time, lease store.Lease) (*store.Run, error) {
	if s.d.skipLocked {
		claimed, grouped, err := s.claimUngrouped(ctx, at, lease)
		if err != nil {
			return nil, fmt.Errorf("claiming the next queued run: %w", err)
		}
		if !grouped {
			return claimed, nil
		}
	}
	var claimed *store.Run
	err := s.tx(ctx, func(tx txn) error {
		// Which run may start depends on the other runs of its group:
		// claims are serialized across engines sharing the database.
		if err := tx.lock(ctx, "slipway claim"); err != nil {
			return err
		}
		for {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT r.id FROM runs r WHERE r.status = ? AND `+mayStart("r")+`
				ORDER BY r.id LIMIT 1`, store.RunQueued).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			// A run outside any group may have been claimed meanwhile
			// without the lock (claimUngrouped): then the next one.
			claimed, err = scanRun(tx.QueryRowContext(ctx, `UPDATE runs SET `+claimSet+` WHERE id = ? AND status = ? RETURNING `+runColumns,
				store.RunRunning, micros(at), lease.Owner, micros(lease.Until), id, store.RunQueued))
			if err == nil {
				return insertEvent(ctx, tx, store.Event{RunID: id, Time: at, Kind: eventStarted, Message: store.StartedBy(lease)})
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("claiming the next queued run: %w", err)
	}
	return claimed, nil
}

// mayStart is the condition on run r (an alias) that no run of its
// concurrency group is running and no older one of it is queued, and
// that a slot of its name is free.
func mayStart(r string) string {
	return fmt.Sprintf(`(%[1]s.grp = '' OR NOT EXISTS (SELECT 1 FROM runs o
		WHERE o.grp = %[1]s.grp AND o.id <> %[1]s.id AND (o.status = '%[2]s' OR (o.status = '%[3]s' AND o.id < %[1]s.id))))
		AND (%[1]s.slot = '' OR (SELECT COUNT(*) FROM runs o WHERE o.slot = %[1]s.slot AND o.status = '%[2]s') < %[1]s.slots)`,
		r, store.RunRunning, store.RunQueued)
}

// claimSet marks a claimed run running, leased to an owner at a new epoch.
const claimSet = `status = ?, started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END, owner = ?, lease_until = ?, epoch = epoch + 1`

// eventStarted is the kind of the event a claim records.
const eventStarted = "started"

// claimUngrouped claims, in one statement and without the claim lock,
// the oldest queued run outside any concurrency group and slot, unless a
// run of a group or slot that may start is older — grouped reports that
// such a run is queued, which the serialized claim must decide (a slot is
// counted, which only the serialized claim can do). The database locks the
// row it takes and claimers skip the rows others hold, so no two get the
// same run; a run outside any group needs no other check. Grouped runs
// do: of two runs of a group whose inserts committed out of order, each
// could look like the group's oldest to a claimer that does not wait.
func (s *Store) claimUngrouped(ctx context.Context, at time.Time, lease store.Lease) (claimed *store.Run, grouped bool, err error) {
	queued := "'" + string(store.RunQueued) + "'"
	row := s.db.QueryRowContext(ctx, `WITH claimed AS (
		UPDATE runs SET `+claimSet+` WHERE id = (
			SELECT r.id FROM runs r WHERE r.status = `+queued+` AND r.grp = '' AND r.slot = ''
			AND NOT EXISTS (SELECT 1 FROM runs g WHERE g.status = `+queued+` AND g.grp <> '' AND g.id < r.id AND `+mayStart("g")+`)
			AND NOT EXISTS (SELECT 1 FROM runs g WHERE g.status = `+queued+` AND g.slot <> '' AND g.id < r.id AND `+mayStart("g")+`)
			ORDER BY r.id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+runColumns+`),
		started AS (INSERT INTO events (run_id, at, kind, message) SELECT id, ?, '`+eventStarted+`', ? FROM claimed)
		(SELECT `+runColumns+`, false FROM claimed)
		UNION ALL
		(SELECT `+runColumns+`, true FROM runs g WHERE g.status = `+queued+` AND g.grp <> '' AND `+mayStart("g")+`
			AND NOT EXISTS (SELECT 1 FROM claimed) LIMIT 1)
		UNION ALL
		(SELECT `+runColumns+`, true FROM runs g WHERE g.status = `+queued+` AND g.slot <> '' AND `+mayStart("g")+`
			AND NOT EXISTS (SELECT 1 FROM claimed) LIMIT 1)`,
		store.RunRunning, micros(at), lease.Owner, micros(lease.Until), micros(at), store.StartedBy(lease))
	claimed, err = scanRun(flagged{row, &grouped})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil || grouped {
		return nil, grouped, err
	}
	return claimed, false, nil
}

// flagged scans a row with one more column than its scanner reads: a flag.
type flagged struct {
	scanner
	flag *bool
}

func (f flagged) Scan(dest ...any) error { return f.scanner.Scan(append(dest, f.flag)...) }

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
	res, err := s.exec(ctx, `UPDATE runs SET owner = ?, lease_until = ?, epoch = epoch + 1 WHERE id = ? AND status = ? AND lease_until < ?`,
		lease.Owner, micros(lease.Until), id, store.RunRunning, micros(at))
	if err != nil {
		return false, fmt.Errorf("taking over run %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
