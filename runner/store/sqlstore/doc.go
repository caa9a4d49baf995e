// Package sqlstore implements store.Store on database/sql. SQLite
// (modernc.org/sqlite, pure Go, WAL) is the embedded default; the schema
// and queries are written to run on PostgreSQL too, with the differences
// (auto-increment ids, placeholders) confined to a dialect.
//
// Migrations are embedded, numbered files under migrations/, applied in
// order inside a transaction each and recorded in schema_migrations; an
// engine never runs against a database newer than it knows.
package sqlstore
