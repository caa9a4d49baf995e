// Package server is `slipway serve`'s HTTP face. It routes the parts it
// is made of, which share one auth Guard: the forges' webhooks (package
// triggers), the JSON API (server/api), the browser UI (server/ui, with
// its templates and assets in server/web), the Alertmanager receiver
// (server/hooks) and the engine's /metrics (here). Each part declares the
// store methods it calls; server.Store is their union.
package server
