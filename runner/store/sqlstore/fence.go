package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipwayci/slipway/runner/store"
)

// A write made under a fence (store.WithFence) first checks, in its own
// transaction, that the run is still at the fence's epoch, and fails
// with store.ErrFenced, writing nothing, when it is not. On PostgreSQL
// the check holds the run's row shared until the write commits, so a
// takeover (which raises the epoch) waits for a write that passed it:
// every write under an old epoch is either before the takeover or
// refused.

// fenced is f, a write, with the check of ctx's fence first (f itself
// when ctx has none).
func fenced(ctx context.Context, f func(txn) error) func(txn) error {
	fence, ok := store.FenceOf(ctx)
	if !ok {
		return f
	}
	return func(tx txn) error {
		if err := tx.checkFence(fence); err != nil {
			return err
		}
		return f(tx)
	}
}

// checkFence fails when run f.Run has moved past f.Epoch.
func (h txn) checkFence(f store.Fence) error {
	q := `SELECT epoch FROM runs WHERE id = ?`
	if h.db.d.numbered {
		q += ` FOR SHARE`
	}
	var epoch int64
	switch err := h.QueryRowContext(h.ctx, q, f.Run).Scan(&epoch); {
	case errors.Is(err, sql.ErrNoRows):
		return staleFence(f, "no longer exists")
	case err != nil:
		return fmt.Errorf("checking the fencing token of run %d: %w", f.Run, err)
	case epoch != f.Epoch:
		return staleFence(f, fmt.Sprintf("is at %d", epoch))
	}
	return nil
}

func staleFence(f store.Fence, now string) error {
	return fmt.Errorf("writing for run %d under fencing token %d: %w (the run %s)", f.Run, f.Epoch, store.ErrFenced, now)
}

// fenceGuard is the check as the first statement of a PostgreSQL batch,
// which cannot look at one result before the next statement runs: it
// divides by the number of rows at the epoch, so a stale fence fails the
// batch (all of it) with division_by_zero.
const (
	fenceGuard     = `SELECT 1 / COUNT(*) FROM (SELECT 1 FROM runs WHERE id = ? AND epoch = ? FOR SHARE) f`
	divisionByZero = "22012"
)

// guardBatch puts ctx's fence check before stmts, and says how to read
// the batch's error.
func guardBatch(ctx context.Context, stmts []stmt) ([]stmt, func(error) error) {
	fence, ok := store.FenceOf(ctx)
	if !ok {
		return stmts, func(err error) error { return err }
	}
	guarded := append([]stmt{{q: fenceGuard, args: []any{fence.Run, fence.Epoch}}}, stmts...)
	return guarded, func(err error) error {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == divisionByZero {
			return staleFence(fence, "is at another")
		}
		return err
	}
}

// heard tells ctx's fence of a write it refused, and returns err.
func heard(ctx context.Context, err error) error {
	if !errors.Is(err, store.ErrFenced) {
		return err
	}
	if f, ok := store.FenceOf(ctx); ok && f.Stale != nil {
		f.Stale(err)
	}
	return err
}
