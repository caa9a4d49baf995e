// Package stages is the contract between the runner and the stage kinds.
//
// Each kind lives in a package of its own under stages/kinds/ (clone, run,
// build, scan, deploy, canary, and fake for tests and the demo),
// implements Stage and is registered by hand in cmd/slipway. Kinds never
// import each other; the machinery several kinds share lives in packages
// of its own directly under stages/ (analysis, argocd, gitops, pods,
// relay, retry, sandbox, toollog, tools, workspace). The runner knows
// only this package.
package stages
