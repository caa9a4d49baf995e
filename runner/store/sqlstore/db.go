package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/slipwayci/slipway/runner/store"
)

// The store's SQL is written once, with "?" placeholders; a database that
// numbers its placeholders (PostgreSQL: $1, $2, …) gets them rebound.
// db and tx wrap database/sql's handles so that no query can skip it.

// querier is a database or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type db struct {
	raw   *sql.DB
	d     dialect
	stmts *stmtCache // nil: no statement is kept prepared
}

func (h db) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := h.stmts.get(ctx, h.raw, q); st != nil {
		return st.ExecContext(ctx, values(args)...)
	}
	return h.raw.ExecContext(ctx, h.d.rebind(q), values(args)...)
}

func (h db) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := h.stmts.get(ctx, h.raw, q); st != nil {
		return st.QueryContext(ctx, values(args)...)
	}
	return h.raw.QueryContext(ctx, h.d.rebind(q), values(args)...)
}

func (h db) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := h.stmts.get(ctx, h.raw, q); st != nil {
		return st.QueryRowContext(ctx, values(args)...)
	}
	return h.raw.QueryRowContext(ctx, h.d.rebind(q), values(args)...)
}

// txn is a transaction of the writer's. Its statements run on its own
// context (the write's, without cancellation), whatever they are given.
type txn struct {
	ctx     context.Context
	raw     *sql.Tx
	db      db
	pending *[]store.Signal // to deliver in this process once committed (SQLite)
}

// stmt is q prepared for this transaction, or nil.
func (h txn) stmt(q string) *sql.Stmt {
	if st := h.db.stmts.get(h.ctx, h.db.raw, q); st != nil {
		return h.raw.StmtContext(h.ctx, st) // closed with the transaction
	}
	return nil
}

func (h txn) ExecContext(_ context.Context, q string, args ...any) (sql.Result, error) {
	if st := h.stmt(q); st != nil {
		return st.ExecContext(h.ctx, values(args)...)
	}
	return h.raw.ExecContext(h.ctx, h.db.d.rebind(q), values(args)...)
}

func (h txn) QueryContext(_ context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := h.stmt(q); st != nil {
		return st.QueryContext(h.ctx, values(args)...)
	}
	return h.raw.QueryContext(h.ctx, h.db.d.rebind(q), values(args)...)
}

func (h txn) QueryRowContext(_ context.Context, q string, args ...any) *sql.Row {
	if st := h.stmt(q); st != nil {
		return st.QueryRowContext(h.ctx, values(args)...)
	}
	return h.raw.QueryRowContext(h.ctx, h.db.d.rebind(q), values(args)...)
}

func (h txn) PrepareContext(_ context.Context, q string) (*sql.Stmt, error) {
	return h.raw.PrepareContext(h.ctx, h.db.d.rebind(q))
}

// stmtCache keeps the store's statements prepared (SQLite: the driver
// would parse and plan each statement at every call; pgx caches prepared
// statements itself). Statements made of several (migrations) are not
// kept, and the cache is bounded: queries whose text varies (an IN list's
// length) fill it only so far.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const maxStmts = 256

func (c *stmtCache) get(ctx context.Context, raw *sql.DB, q string) *sql.Stmt {
	if c == nil || strings.Contains(q, ";") {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if len(c.m) >= maxStmts {
		return nil
	}
	st, err := raw.PrepareContext(context.WithoutCancel(ctx), q)
	if err != nil {
		return nil // the statement is run unprepared, and its error said there
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st
}

func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// lock serializes the transaction with every other one taking the same
// lock, until it ends. SQLite needs nothing: its transactions begin
// IMMEDIATE, one writer at a time. PostgreSQL takes a transaction-scoped
// advisory lock, which is what makes a check-then-write (which runs may
// start, which migrations are applied) safe across engine replicas.
func (h txn) lock(_ context.Context, name string) error {
	if h.db.d.lockSQL == "" {
		return nil
	}
	_, err := h.raw.ExecContext(h.ctx, h.db.d.lockSQL, name)
	return err
}

// values makes arguments mean the same to every database: a bool is
// stored as the integer 0 or 1 (the schema has no boolean type SQLite
// knows), and text is valid UTF-8 without NUL bytes — PostgreSQL refuses
// both in text, SQLite would keep them, and a build's log or a forge's
// payload may hold anything. Invalid bytes and NULs become U+FFFD.
func values(args []any) []any {
	for i, a := range args {
		switch v := a.(type) {
		case bool:
			if v {
				args[i] = 1
			} else {
				args[i] = 0
			}
		case string:
			args[i] = cleanText(v)
		}
	}
	return args
}

func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// rebind turns "?" placeholders into "$1", "$2", … when the dialect
// numbers them. A "?" inside a quoted literal is left alone.
func (d dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var (
		b      strings.Builder
		n      int
		quoted bool
	)
	b.Grow(len(q) + 16)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
