// Package integration holds Slipway's end-to-end tests: real slipway
// processes, real databases and, as the stage kinds land, the local cluster
// they run against (DESIGN.md §8). Tests here fail rather than skip when
// CI=true and something they need is missing.
package integration
