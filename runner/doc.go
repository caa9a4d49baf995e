// Package runner executes pipeline runs: it queues them, honours
// concurrency groups, drives each stage through its attempts with
// timeouts, retries and cleanup, persists every transition, masks secrets
// in logs, streams logs to followers, and after an engine crash resumes or
// fails what was left running.
//
// A run is a persisted state machine (see state.go):
//
//	queued → running → succeeded | failed | cancelled
//	running → queued   (engine restarted or shut down: resumed later)
//
// and each stage attempt goes running → succeeded | failed | cancelled |
// interrupted. Interrupted attempts (engine gone) do not count against a
// stage's retries. Stage results are idempotent by (run, stage, attempt):
// a resumed run skips the stages that succeeded, with their outputs.
//
// The runner knows stage kinds only through stages.Registry and persists
// only through the narrow interfaces of runner/store.
package runner
