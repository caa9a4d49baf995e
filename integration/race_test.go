//go:build race

package integration

// raceEnabled: this test binary has the race detector, and so has the
// slipway binary TestMain builds (make test runs go test -race).
const raceEnabled = true
