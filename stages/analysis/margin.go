package analysis

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Comparing the canary with the stable by an absolute margin: is the
// canary's bad share more than Delta (e.g. 0.5 percentage points) above
// the stable's? The ratio test of sequential.go cannot say this (a
// difference is not invariant to the common error rate), so each side
// gets its own always-valid bound and the canary is worse when its lower
// bound exceeds the stable's upper bound plus Delta.
//
// A side's bound comes from a one-sided mixture likelihood ratio on its
// cumulative counts (k bad of n): for a null share q,
//
//	M⁺(q) = ∫_q^1 (p/q)^k · ((1−p)/(1−q))^(n−k) π(p) dp
//
// mixing the alternatives above q under the Jeffreys prior π =
// Beta(½, ½) (Robbins' method of mixtures; in closed form, a ratio of
// beta functions times an incomplete beta function). Each alternative
// p > q is a nonnegative supermartingale while the side's true share
// stays at most q (its expected factor per request is at most one), so
// their mixture is too, and P(M⁺ ever reaches 1/α) ≤ α (Ville's
// inequality). M⁻ mirrors it for the stable, mixing the alternatives
// below q. The evidence against "the canary's share ≤ the stable's +
// Delta" is
//
//	e = min over q of ½ · max(M⁺_canary(q + Delta), M⁻_stable(q))
//
// at most the average of the two supermartingales at the true shares, so
// e is bounded by one as well: the canary is worse at confidence 1 − α
// when e reaches 1/α, looked at as often as one likes. Shares are assumed
// steady within a step (the null is the canary's worst share against the
// stable's best); where a common cause moves both sides' shares, the
// ratio test is the one to use.

// jeffreys is the prior's parameter, Beta(½, ½).
const jeffreys = 0.5

// logLikelihood is log(q^k (1−q)^(n−k)), with 0·log 0 = 0.
func logLikelihood(q, k, n float64) float64 {
	term := func(count, prob float64) float64 {
		if count == 0 {
			return 0
		}
		return count * math.Log(prob) // −Inf when prob is 0
	}
	return term(k, q) + term(n-k, 1-q)
}

func logBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// side is one side's counts, k bad of n, with the mixture's normaliser.
type side struct {
	k, n, a, b, logNorm float64
}

func newSide(k, n float64) side {
	a, b := jeffreys+k, jeffreys+n-k
	return side{k: k, n: n, a: a, b: b, logNorm: logBeta(a, b) - logBeta(jeffreys, jeffreys)}
}

// mixture is M⁺(q) (above true) or M⁻(q) (above false).
func (s side) mixture(q float64, above bool) float64 {
	var tail float64 // the prior-weighted share of alternatives on this side
	switch {
	case above && q >= 1, !above && q <= 0:
		return 0
	case above:
		tail = mathext.RegIncBeta(s.b, s.a, 1-q) // 1 − I_q(a, b), without cancellation
	default:
		tail = mathext.RegIncBeta(s.a, s.b, q)
	}
	if tail <= 0 {
		return 0
	}
	return math.Exp(s.logNorm + math.Log(tail) - logLikelihood(q, s.k, s.n))
}

// marginEvidence is e for the totals so far and margin delta (0 ≤ delta < 1).
func marginEvidence(t Counts, delta float64) float64 {
	if t.CanaryRequests <= 0 || t.StableRequests <= 0 {
		return 1
	}
	cs, ss := newSide(t.CanaryBad, t.CanaryRequests), newSide(t.StableBad, t.StableRequests)
	canary := func(q float64) float64 { return cs.mixture(q+delta, true) }
	stable := func(q float64) float64 { return ss.mixture(q, false) }
	// canary(q) is below one from a = (canary's observed share − delta)
	// up and falls towards a; stable(q) is below one up to b = the
	// stable's observed share and rises after it. When a ≤ b some q has
	// both below one: no evidence. Otherwise the minimum of their maximum
	// is where they cross in [b, a], found by bisection and taken from
	// below (max(canary(hi), stable(lo)) is at most the crossing value).
	a := math.Min(t.CanaryBad/t.CanaryRequests-delta, 1-delta)
	b := t.StableBad / t.StableRequests
	if a <= b || canary(b) <= 2 { // at q = b, e is at most max(canary(b), 1)/2
		return 1
	}
	lo, hi := b, a
	for range 36 { // to (a − b)·1.5e-11, taken from below
		mid := (lo + hi) / 2
		if canary(mid) > stable(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Max(math.Max(canary(hi), stable(lo))/2, 1)
}
