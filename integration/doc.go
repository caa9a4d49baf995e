// Package integration holds Slipway's end-to-end tests: real slipway
// processes, real databases, real git, registry, Kaniko and Trivy, and the
// local cluster with the real Argo CD that releases run against (the local cluster, package cluster). Tests here fail rather than skip when
// CI=true and something they need is missing.
package integration
