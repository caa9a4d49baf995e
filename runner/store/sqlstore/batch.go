package sqlstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/slipwayci/slipway/runner/store"
)

// Most writes are a few statements none of which needs another's result
// to be written: a stage's attempt and the stage, a page of log lines,
// an event. On PostgreSQL such a write is sent as one batch — one round
// trip, run by the server as one implicit transaction, all of it or none
// — where a transaction would cost a round trip for BEGIN, one for each
// statement and one for COMMIT. On SQLite it goes through the writer
// like any other.

// stmt is one statement of a write, its arguments, and where to scan the
// one row it returns (nil: it returns none).
type stmt struct {
	q    string
	args []any
	dest []any
}

// writeAll runs stmts, in order, in one transaction, and sends sigs once
// it committed. It returns once the transaction committed.
func (s *Store) writeAll(ctx context.Context, stmts []stmt, sigs ...store.Signal) error {
	if !s.d.pipelines {
		return s.tx(ctx, func(tx txn) error {
			for _, st := range stmts {
				if err := st.run(tx); err != nil {
					return err
				}
			}
			for _, sig := range sigs {
				if err := tx.signal(ctx, sig); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := ctx.Err(); err != nil {
		return err // given up before it began: not written
	}
	guarded, read := guardBatch(ctx, stmts)
	// Once sent, a write is carried out even if ctx ends: its caller learns how.
	if err := s.db.sendBatch(context.WithoutCancel(ctx), guarded); err != nil {
		return heard(ctx, read(err))
	}
	s.publish(sigs...)
	return nil
}

// run runs st in tx.
func (st stmt) run(tx txn) error {
	if st.dest != nil {
		return tx.QueryRowContext(tx.ctx, st.q, st.args...).Scan(st.dest...)
	}
	_, err := tx.ExecContext(tx.ctx, st.q, st.args...)
	return err
}

// sendBatch sends stmts to PostgreSQL as one batch and reads their results.
func (h db) sendBatch(ctx context.Context, stmts []stmt) error {
	conn, err := h.raw.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		pc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("batch: the database connection is a %T, not pgx's", driverConn)
		}
		b := &pgx.Batch{}
		for _, st := range stmts {
			b.Queue(h.d.rebind(st.q), values(st.args)...)
		}
		res := pc.Conn().SendBatch(ctx, b)
		for _, st := range stmts {
			var err error
			if st.dest != nil {
				err = res.QueryRow().Scan(st.dest...)
			} else {
				_, err = res.Exec()
			}
			if err != nil {
				res.Close()
				return err
			}
		}
		return res.Close()
	})
}
