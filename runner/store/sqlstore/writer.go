package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// Writes are group-committed: every write is a function of a transaction
// (tx). On SQLite it is handed to the store's one writer, which runs those
// waiting together in one transaction and commits them at once — one
// commit (one fsync, one WAL write) for many deliveries, log batches and
// status changes, and no writer ever waits on another's lock. On
// PostgreSQL each write is a transaction of its own, run side by side with
// the others: the server merges concurrent commits' WAL flushes itself. A write
// returns once its transaction committed: nothing is acknowledged before
// it is durable. If any write of a batch fails, the batch is rolled back
// and each of its writes is run again alone, so that one write's error is
// its own.

// maxBatch bounds the writes committed together. Under load (the last
// batch held more than one write) the writer lingers up to lingerFor for
// more before it commits: each of them waits a little longer, and there
// are fewer, fuller commits. A lone write is committed at once.
const (
	maxBatch  = 128
	lingerFor = 200 * time.Microsecond
)

type write struct {
	ctx  context.Context
	f    func(txn) error
	sigs []store.Signal
	err  error
	done chan struct{}
}

type writer struct {
	s       *Store
	queue   chan *write
	stop    chan struct{}
	stopped sync.WaitGroup
}

var errClosed = errors.New("store closed")

func newWriter(s *Store) *writer {
	w := &writer{s: s, queue: make(chan *write, maxBatch), stop: make(chan struct{})}
	w.stopped.Add(1)
	go w.loop()
	return w
}

func (w *writer) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.stopped.Wait()
}

// tx runs f in a transaction (shared with other writes waiting at the
// same time) and returns once it committed, then delivers the signals f
// gave in this process (SQLite).
// A write under a fence checks it first (fence.go).
func (s *Store) tx(ctx context.Context, f func(txn) error) error {
	return heard(ctx, s.commitTx(ctx, fenced(ctx, f)))
}

// commitTx is tx without the fence.
func (s *Store) commitTx(ctx context.Context, f func(txn) error) error {
	wr := &write{ctx: ctx, f: f, done: make(chan struct{})}
	if s.d.numbered {
		// PostgreSQL runs transactions side by side and merges their
		// commits' WAL flushes itself; one writer would make every write
		// wait for the round trips of all the others.
		s.w.commit([]*write{wr})
		return s.deliverAfter(wr)
	}
	select {
	case s.w.queue <- wr:
	case <-s.w.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-wr.done // once queued, a write is carried out even if ctx ends: its caller learns how
	return s.deliverAfter(wr)
}

// deliverAfter sends the signals of a committed write.
func (s *Store) deliverAfter(wr *write) error {
	if wr.err != nil {
		return wr.err
	}
	s.publish(wr.sigs...)
	return nil
}

// autocommit runs f, which makes one statement, as a write: on
// PostgreSQL on its own (one round trip, committed by the server), on
// SQLite — and under a fence — as a transaction.
func (s *Store) autocommit(ctx context.Context, f func(context.Context, querier) error) error {
	if _, ok := store.FenceOf(ctx); s.d.numbered && !ok {
		if err := ctx.Err(); err != nil {
			return err // given up before it began: not written
		}
		return f(context.WithoutCancel(ctx), s.db)
	}
	return s.tx(ctx, func(tx txn) error { return f(ctx, tx) })
}

// exec runs one statement as a write (autocommit).
func (s *Store) exec(ctx context.Context, q string, args ...any) (res sql.Result, err error) {
	err = s.autocommit(ctx, func(ctx context.Context, db querier) error {
		res, err = db.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

func (w *writer) loop() {
	defer w.stopped.Done()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	busy := false
	for {
		var batch []*write
		select {
		case wr := <-w.queue:
			batch = append(batch, wr)
		case <-w.stop:
			w.drain()
			return
		}
		var lingered <-chan time.Time // nil: do not wait for more
		if busy {
			linger.Reset(lingerFor)
			lingered = linger.C
		}
	more:
		for len(batch) < maxBatch {
			select {
			case wr := <-w.queue:
				batch = append(batch, wr)
				continue
			default:
			}
			if lingered == nil {
				break
			}
			select {
			case wr := <-w.queue:
				batch = append(batch, wr)
			case <-lingered:
				break more
			}
		}
		linger.Stop()
		busy = len(batch) > 1
		if err := w.commit(batch); err != nil && len(batch) > 1 {
			for _, wr := range batch {
				w.commit([]*write{wr})
			}
		}
		for _, wr := range batch {
			close(wr.done)
		}
	}
}

// drain fails the writes still queued when the store closes.
func (w *writer) drain() {
	for {
		select {
		case wr := <-w.queue:
			wr.err = errClosed
			close(wr.done)
		default:
			return
		}
	}
}

// commit runs batch in one transaction. Each write's own error is set;
// the transaction's error (any write's, or the commit's) is returned.
func (w *writer) commit(batch []*write) error {
	raw, err := w.s.db.raw.BeginTx(context.Background(), nil)
	if err != nil {
		for _, wr := range batch {
			wr.err = err
		}
		return err
	}
	var failed error
	for _, wr := range batch {
		wr.sigs, wr.err = nil, nil
		if err := wr.ctx.Err(); err != nil {
			wr.err = err // given up before its turn: not written
			continue
		}
		// The write's statements run without its cancellation (txn.ctx):
		// a statement cut short would end the whole batch's transaction.
		if wr.err = wr.f(txn{ctx: context.WithoutCancel(wr.ctx), raw: raw, db: w.s.db, pending: &wr.sigs}); wr.err != nil {
			failed = wr.err
			break
		}
	}
	if failed != nil {
		raw.Rollback()
		return failed
	}
	if err := raw.Commit(); err != nil {
		for _, wr := range batch {
			wr.err = err
		}
		return err
	}
	return nil
}
