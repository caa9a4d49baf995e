// Package store defines what the runner persists — runs, their stages and
// attempts, log lines and timeline events — as small interfaces, and the
// types that cross them. Implementations live in subpackages: sqlstore
// (SQLite by default; its SQL is kept portable for PostgreSQL).
package store
