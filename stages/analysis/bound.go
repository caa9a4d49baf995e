package analysis

import "math"

// Holding the canary to a fixed bound, continuously: is its bad share
// (5xx answers, or requests slower than a latency bound) above Limit —
// the share a metric's min or max allows, e.g. 5 % for a success rate of
// at least 95? The canary's side of the margin test (margin.go) answers
// it alone: M⁺(Limit), the mixture of the alternatives above Limit on
// the canary's cumulative counts, is a nonnegative supermartingale while
// the canary's true share stays at most Limit, so it reaches 1/α with
// probability at most α however often it is looked at, and the canary is
// above its bound at confidence 1 − α when it does. A share at or below
// the bound never gives evidence; with Limit 0 (min: 100) one bad request
// is conclusive.

// NewBound starts a check that the canary's bad share stays at most
// limit (a share, 0 ≤ limit ≤ 1).
func NewBound(limit float64) Sequence {
	return Sequence{Rho0: 1, Bound: true, Limit: math.Min(math.Max(limit, 0), 1)}
}

// boundEvidence is M⁺(limit) on the canary's totals, at least one.
func boundEvidence(t Counts, limit float64) float64 {
	if t.CanaryRequests <= 0 || t.CanaryBad/t.CanaryRequests <= limit {
		return 1
	}
	return math.Max(newSide(t.CanaryBad, t.CanaryRequests).mixture(limit, true), 1)
}
