// Package sqlstore implements store.Store on database/sql, for SQLite
// (modernc.org/sqlite, pure Go, WAL: one engine, the default) and
// PostgreSQL (pgx: several engines on one database). The queries are
// written once, with ? placeholders (rebound to $n for PostgreSQL), and
// one contract test suite runs against both; what differs is in dialect.
//
// Work that several engines may do at once is made safe by the
// statements themselves — INSERT … ON CONFLICT DO NOTHING for deliveries
// and dedup keys, a guarded UPDATE … RETURNING for release commands — or,
// where a decision reads other rows (which queued run may start, which
// migrations are applied), by a transaction-scoped advisory lock
// (SQLite's transactions are serial anyway).
//
// Migrations are embedded, numbered files under migrations/, applied in
// order in one transaction under that lock and recorded in
// schema_migrations; an engine never runs against a database newer than
// it knows.
package sqlstore
