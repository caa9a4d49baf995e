// Package server is `slipway serve`'s HTTP face: the JSON API over runs,
// logs (Server-Sent Events), promotions and rollbacks, API tokens with
// roles, the audit log, the engine's /metrics, and the embedded web UI.
// (Arrives with the engine server.)
package server
