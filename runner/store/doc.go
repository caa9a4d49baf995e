// Package store defines what the engine persists — runs, their stages and
// attempts, log lines, timeline events, artifacts, webhook deliveries,
// schedules, the audit log, release checkpoints and commands,
// measurements and rollback records — as small interfaces, and the types
// that cross them. The implementation is sqlstore (SQLite).
package store
