package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
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
	raw *sql.DB
	d   dialect
}

func (h db) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return h.raw.ExecContext(ctx, h.d.rebind(q), values(args)...)
}

func (h db) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return h.raw.QueryContext(ctx, h.d.rebind(q), values(args)...)
}

func (h db) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return h.raw.QueryRowContext(ctx, h.d.rebind(q), values(args)...)
}

type txn struct {
	raw     *sql.Tx
	d       dialect
	pending *[]store.Signal // to deliver in this process once committed (SQLite)
}

func (h txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return h.raw.ExecContext(ctx, h.d.rebind(q), values(args)...)
}

func (h txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return h.raw.QueryContext(ctx, h.d.rebind(q), values(args)...)
}

func (h txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return h.raw.QueryRowContext(ctx, h.d.rebind(q), values(args)...)
}

func (h txn) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return h.raw.PrepareContext(ctx, h.d.rebind(q))
}

// lock serializes the transaction with every other one taking the same
// lock, until it ends. SQLite needs nothing: its transactions begin
// IMMEDIATE, one writer at a time. PostgreSQL takes a transaction-scoped
// advisory lock, which is what makes a check-then-write (which runs may
// start, which migrations are applied) safe across engine replicas.
func (h txn) lock(ctx context.Context, name string) error {
	if h.d.lockSQL == "" {
		return nil
	}
	_, err := h.raw.ExecContext(ctx, h.d.lockSQL, name)
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
