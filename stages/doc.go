// Package stages is the contract between the runner and the stage kinds.
//
// Each kind lives in a package of its own under stages/ (clone, build,
// scan, deploy, canary, and fake for tests and the demo), implements Stage
// and is registered by hand in cmd/slipway. Kinds never import each other;
// machinery that several kinds share lives in packages of its own beside
// them. The runner knows only this package.
package stages
