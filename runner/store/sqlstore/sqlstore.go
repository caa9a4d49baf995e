package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/slipwayci/slipway/runner/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// dialect holds what differs between databases.
type dialect struct {
	name string
	id   string // the column type of an auto-increment primary key
}

var sqlite = dialect{name: "sqlite", id: "INTEGER PRIMARY KEY AUTOINCREMENT"}

// Store is a store.Store over a SQL database.
type Store struct {
	db *sql.DB
	d  dialect
}

// OpenSQLite opens (creating if needed) the SQLite database at path, in
// WAL mode with foreign keys on, and brings its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if path != ":memory:" {
		// The database holds logs, outputs and evidence: its owner's only.
		// SQLite gives its -wal and -shm files the database's mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
		}
		err = f.Chmod(0o600)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
		}
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	// One writer at a time is all SQLite allows; a small pool keeps
	// readers (log followers) from waiting behind it in WAL mode.
	db.SetMaxOpenConns(4)
	s := &Store{db: db, d: sqlite}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening sqlite %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if current > len(files) {
		return fmt.Errorf("database schema is version %d, newer than this engine knows (%d): upgrade slipway", current, len(files))
	}
	for i, f := range files {
		version := i + 1
		if n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(f, "migrations/"), "_", 2)[0]); n != version {
			return fmt.Errorf("migration %s is out of sequence (want number %d)", f, version)
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		if err := s.apply(ctx, version, strings.ReplaceAll(string(body), "{{ID}}", s.d.id)); err != nil {
			return fmt.Errorf("applying migration %s: %w", f, err)
		}
	}
	return nil
}

// apply runs one migration unless the database already has it. The check
// and the change share a transaction, so two engines opening a new
// database at once apply it once.
func (s *Store) apply(ctx context.Context, version int, body string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var done int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&done); err != nil {
			return err
		}
		if done > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, micros(time.Now()))
		return err
	})
}

// tx runs f in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// in expands "?" for a list of values: ("?, ?, ?", args).
func in[T any](vals []T) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", "), args
}

var _ store.Store = (*Store)(nil)

// queryAll runs a query and scans each row with scan.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(...any) error }
