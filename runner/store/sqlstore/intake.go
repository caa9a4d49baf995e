package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipwayci/slipway/runner/store"
)

const deliveryColumns = `forge, id, received_at, event, repo, ref, sha, status, reason, matches_json, payload`

func scanDelivery(row scanner) (*store.Delivery, error) {
	var (
		d                store.Delivery
		at               int64
		matches, payload string
	)
	if err := row.Scan(&d.Forge, &d.ID, &at, &d.Event, &d.Repo, &d.Ref, &d.SHA, &d.Status, &d.Reason, &matches, &payload); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(matches), &d.Matches); err != nil {
		return nil, fmt.Errorf("decoding matches of delivery %s/%s: %w", d.Forge, d.ID, err)
	}
	d.ReceivedAt, d.Payload = fromMicros(at), []byte(payload)
	return &d, nil
}

func encodeMatches(m []store.Match) (string, error) {
	if m == nil {
		m = []store.Match{}
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// CreateDelivery stores d unless a delivery with its (Forge, ID) exists,
// in which case it returns that one.
func (s *Store) CreateDelivery(ctx context.Context, d *store.Delivery) (*store.Delivery, error) {
	// One statement: a redelivery racing its first delivery (on another
	// engine, say) inserts nothing and finds the first.
	if inserted, err := s.insertAlone(ctx, d); err != nil || inserted {
		return nil, err
	}
	return readDelivery(ctx, s.db, d.Forge, d.ID)
}

// insertAlone is insertDelivery as a write of its own (autocommit).
func (s *Store) insertAlone(ctx context.Context, d *store.Delivery) (inserted bool, err error) {
	err = s.autocommit(ctx, func(ctx context.Context, db querier) (err error) {
		inserted, err = insertDelivery(ctx, db, d)
		return err
	})
	return inserted, err
}

// insertDelivery stores d unless (Forge, ID) exists, and says whether it did.
func insertDelivery(ctx context.Context, db querier, d *store.Delivery) (bool, error) {
	matches, err := encodeMatches(d.Matches)
	if err != nil {
		return false, err
	}
	res, err := db.ExecContext(ctx, `INSERT INTO deliveries (`+deliveryColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (forge, id) DO NOTHING`,
		d.Forge, d.ID, micros(d.ReceivedAt), d.Event, d.Repo, d.Ref, d.SHA, d.Status, d.Reason, matches, string(d.Payload))
	if err != nil {
		return false, fmt.Errorf("storing delivery %s/%s: %w", d.Forge, d.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func readDelivery(ctx context.Context, db querier, forge, id string) (*store.Delivery, error) {
	d, err := scanDelivery(db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE forge = ? AND id = ?`, forge, id))
	if err != nil {
		return nil, fmt.Errorf("reading delivery %s/%s: %w", forge, id, err)
	}
	return d, nil
}

// RecordDelivery stores d with the runs it starts, in one transaction
// (store.Deliveries): one commit for the delivery, its runs and their
// stages, and nothing of it if any part fails.
func (s *Store) RecordDelivery(ctx context.Context, d *store.Delivery, runs []*store.NewRun, outcome func(*store.Delivery)) (*store.Delivery, error) {
	if s.d.pipelines && len(runs) == 0 {
		// On PostgreSQL a delivery starting nothing is one statement,
		// committed by the server; only if one with its ID exists does it
		// take the transaction below, which decides what it duplicates.
		outcome(d)
		if inserted, err := s.insertAlone(ctx, d); err != nil || inserted {
			return nil, err
		}
	}
	if s.d.pipelines && len(runs) > 0 {
		if done, err := s.recordAtOnce(ctx, d, runs, outcome); err != nil || done {
			return nil, err
		}
	}
	var existing *store.Delivery
	err := s.tx(ctx, func(tx txn) error {
		existing = nil
		// The runs first: a redelivery racing this one (on another engine,
		// say) waits at its first run for this to commit, then finds it.
		for _, nr := range runs {
			if err := createRun(ctx, tx, nr); err != nil {
				return err
			}
		}
		outcome(d)
		inserted, err := insertDelivery(ctx, tx, d)
		if err != nil || inserted {
			return err
		}
		if existing, err = readDelivery(ctx, tx, d.Forge, d.ID); err != nil {
			return err
		}
		if existing.Processed() {
			return errProcessed // a duplicate: whatever this wrote is rolled back
		}
		return updateDelivery(ctx, tx, d)
	})
	if errors.Is(err, errProcessed) {
		return existing, nil
	}
	return existing, err
}

// recordAtOnce is RecordDelivery's common case on PostgreSQL as one
// statement, one round trip: a delivery new to the store whose runs are
// all new. The server numbers the runs, and the delivery's matches name
// them: outcome is given placeholder IDs first, and the statement writes
// each run's ID where its placeholder was. It reports false, having
// written nothing, when the case is another: a delivery or a run key
// that exists (the statement fails on its unique index, and is rolled
// back whole), an outcome that depends on more than where the IDs go, or
// matches that jsonb would refuse.
func (s *Store) recordAtOnce(ctx context.Context, d *store.Delivery, runs []*store.NewRun, outcome func(*store.Delivery)) (bool, error) {
	named, ok := placeholders(d, runs, outcome)
	if !ok {
		return false, nil
	}
	matches, err := encodeMatches(d.Matches)
	if err != nil || strings.Contains(matches, `\u0000`) {
		return false, err // jsonb refuses the NUL a forge's text may hold: the transaction stores it as text
	}
	var (
		ctes, tables []string
		args         []any
		scan         = make([]any, len(runs))
	)
	for i, nr := range runs {
		runArgs, err := runArgs(nr.Run)
		if err != nil {
			return false, err
		}
		c, a := runCTEs(strconv.Itoa(i), nr, runInsert+` RETURNING id`, runArgs)
		ctes, args = append(ctes, c), append(args, a...)
		tables, scan[i] = append(tables, "run"+strconv.Itoa(i)), &nr.Run.ID
	}
	withIDs := "?::jsonb"
	for _, n := range named {
		withIDs = fmt.Sprintf(`jsonb_set(%s, '{%d,runId}', to_jsonb(run%d.id))`, withIDs, n.match, n.run)
	}
	args = append(args, d.Forge, d.ID, micros(d.ReceivedAt), d.Event, d.Repo, d.Ref, d.SHA, d.Status, d.Reason, matches, string(d.Payload))
	err = s.autocommit(ctx, func(ctx context.Context, db querier) error {
		return db.QueryRowContext(ctx, `WITH `+strings.Join(ctes, ", ")+`,
			delivery AS (INSERT INTO deliveries (`+deliveryColumns+`)
				SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, `+withIDs+`::text, ? FROM `+strings.Join(tables, ", ")+`)
			SELECT `+strings.Join(tables, ".id, ")+`.id FROM `+strings.Join(tables, ", "), args...).Scan(scan...)
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording delivery %s/%s with its runs: %w", d.Forge, d.ID, err)
	}
	sigs := make([]store.Signal, len(runs))
	for i, nr := range runs {
		nr.Created, nr.Event.RunID = true, nr.Run.ID
		sigs[i] = createdSignal(nr.Run)
	}
	outcome(d)
	s.publish(sigs...)
	return true, nil
}

// uniqueViolation is PostgreSQL's error code for a row a unique index
// already holds.
const uniqueViolation = "23505"

// namedRun is a match of a delivery that names one of its runs.
type namedRun struct{ match, run int }

// placeholders calls outcome with the runs given placeholder IDs, twice
// with different ones, and returns which matches name which run. ok is
// false when the two outcomes differ in anything but those IDs.
func placeholders(d *store.Delivery, runs []*store.NewRun, outcome func(*store.Delivery)) (named []namedRun, ok bool) {
	try := func(first int64) (store.Delivery, []namedRun) {
		for i, nr := range runs {
			nr.Run.ID, nr.Created = first-int64(i), true
		}
		outcome(d)
		got, named := *d, []namedRun(nil)
		got.Matches = slices.Clone(d.Matches)
		for j, m := range got.Matches {
			if k := first - m.RunID; m.RunID != 0 && k >= 0 && k < int64(len(runs)) {
				named, got.Matches[j].RunID = append(named, namedRun{match: j, run: int(k)}), 0
			}
		}
		return got, named
	}
	a, named := try(-1)
	b, again := try(-1 << 40)
	return named, reflect.DeepEqual(a, b) && slices.Equal(named, again)
}

// errProcessed rolls back the recording of a delivery processed before.
var errProcessed = errors.New("delivery processed already")

// UpdateDelivery saves a delivery's outcome.
func (s *Store) UpdateDelivery(ctx context.Context, d *store.Delivery) error {
	return s.autocommit(ctx, func(ctx context.Context, db querier) error { return updateDelivery(ctx, db, d) })
}

func updateDelivery(ctx context.Context, db querier, d *store.Delivery) error {
	matches, err := encodeMatches(d.Matches)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `UPDATE deliveries SET event = ?, repo = ?, ref = ?, sha = ?, status = ?, reason = ?, matches_json = ?
		WHERE forge = ? AND id = ?`, d.Event, d.Repo, d.Ref, d.SHA, d.Status, d.Reason, matches, d.Forge, d.ID)
	if err != nil {
		return fmt.Errorf("updating delivery %s/%s: %w", d.Forge, d.ID, err)
	}
	return nil
}

// ListDeliveries returns deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]*store.Delivery, error) {
	var (
		where = []string{"1 = 1"}
		args  []any
	)
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Repo != "" {
		where, args = append(where, "repo = ?"), append(args, f.Repo)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	out, err := queryAll(ctx, s.db, scanDelivery, `SELECT `+deliveryColumns+` FROM deliveries WHERE `+
		strings.Join(where, " AND ")+` ORDER BY received_at DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	return out, nil
}

// LastFire returns when the schedule key last fired (zero if never).
func (s *Store) LastFire(ctx context.Context, key string) (time.Time, error) {
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT last_fire FROM schedules WHERE key = ?`, key).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading last fire of %s: %w", key, err)
	}
	return fromMicros(at), nil
}

// SetLastFire records that schedule key fired at at.
func (s *Store) SetLastFire(ctx context.Context, key string, at time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO schedules (key, last_fire) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET last_fire = excluded.last_fire`, key, micros(at))
	if err != nil {
		return fmt.Errorf("recording fire of %s: %w", key, err)
	}
	return nil
}

// AppendAudit adds an entry to the audit log.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	return s.tx(ctx, func(tx txn) error { return appendAudit(ctx, tx, e) })
}

func appendAudit(ctx context.Context, db querier, e store.AuditEntry) error {
	_, err := db.ExecContext(ctx, `INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		micros(e.Time), e.Actor, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("writing audit entry %s %s: %w", e.Action, e.Target, err)
	}
	return nil
}

// ListAudit returns audit entries newest first.
func (s *Store) ListAudit(ctx context.Context, beforeID int64, limit int) ([]store.AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	out, err := queryAll(ctx, s.db, func(row scanner) (e store.AuditEntry, err error) {
		var at int64
		err = row.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail)
		e.Time = fromMicros(at)
		return e, err
	}, `SELECT id, at, actor, action, target, detail FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?`, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading audit log: %w", err)
	}
	return out, nil
}
