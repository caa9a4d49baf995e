// Package canary is the canary stage kind: it moves traffic to the new
// version in weighted steps, each a commit to the GitOps config repo that
// Argo CD syncs and whose weights are verified live, measures the canary
// in Prometheus after each step, and then promotes it (the stable workload
// takes the new digest) or rolls it back (one commit: weights 100/0 and
// the canary workload back on the stable digest).
//
// The release is durable: where it stands is checkpointed in the engine's
// store, so an engine restarted mid-release carries on — a step is redone
// (idempotently: no empty commits), a pause keeps waiting, a rollback in
// progress is completed. People steer it with commands (promote, promote
// --full, pause, resume, abort) that reach it through the store; an
// Alertmanager alert becomes an abort.
//
// Rollback runs on a context that survives the run's cancellation and
// the stage's timeout, with its own bound: once begun it finishes. Only
// an engine shutting down leaves traffic where it is, for the next start.
package canary
