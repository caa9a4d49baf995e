// Package server is `slipway serve`'s HTTP face: the JSON API over runs,
// logs (Server-Sent Events), promotions and rollbacks, API tokens with
// roles scoped by app, the audit log, the engine's /metrics, release
// commands, rollback history and the Alertmanager receiver — and the
// browser UI (ui*.go: login sessions with CSRF, pages built from the same
// store reads, actions through the API's own handlers, one live event
// stream per tab; templates and assets in server/web).
package server
