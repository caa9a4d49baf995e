// Package sqlstore implements store.Store on database/sql. SQLite
// (modernc.org/sqlite, pure Go, WAL) is the only database so far; the id
// column type is kept in a dialect, and the queries use ? placeholders
// (PostgreSQL would need them rewritten).
//
// Migrations are embedded, numbered files under migrations/, applied in
// order inside a transaction each and recorded in schema_migrations; an
// engine never runs against a database newer than it knows.
package sqlstore
