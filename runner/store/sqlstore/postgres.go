package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres://
// URL or key=value string; password, when not "", replaces any in dsn)
// and brings its schema up to date. Several engines may share the
// database: migrations are applied once, under a lock.
func OpenPostgres(ctx context.Context, dsn, password string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors repeat the DSN, password and all: say what is wrong without it
		return nil, fmt.Errorf("opening postgres: the database address is not a valid postgres:// URL or key=value string")
	}
	if password != "" {
		cfg.Password = password
	}
	where := fmt.Sprintf("postgres %s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", where, err)
	}
	s := newStore(db, postgres)
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", where, err)
	}
	listenCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.done = stop, make(chan struct{})
	ready := make(chan error, 1)
	go func() {
		defer close(s.done)
		s.listen(listenCtx, cfg, ready)
	}()
	if err := <-ready; err != nil {
		s.Close()
		return nil, fmt.Errorf("listening for other engines' signals on %s: %w", where, err)
	}
	return s, nil
}
