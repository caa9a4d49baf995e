// Package server is `slipway serve`'s HTTP face: the JSON API over runs,
// logs (Server-Sent Events), promotions and rollbacks, API tokens with
// roles scoped by app, the audit log, the engine's /metrics, release
// commands, rollback history and the Alertmanager receiver. (No web UI yet.)
package server
