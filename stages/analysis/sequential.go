package analysis

import (
	"fmt"
	"math"
	"time"
)

// Comparing the canary with the stable, continuously.
//
// Each request either is "bad" (a 5xx answer; or slower than a latency
// bound) or not. The question is whether the canary's bad share exceeds
// the stable's by more than a tolerance: q_canary > ρ0 · q_stable, with ρ0
// = 1 + maxIncrease. Conditioned on a bad request having happened, it is
// the canary's with probability θ = f·ρ / (f·ρ + 1 − f), where f is the
// canary's share of the requests and ρ = q_canary / q_stable — so each bad
// request is a coin toss whose bias grows with ρ, whatever the common
// error rate is ("everything is slow today" cancels out). The test is a
// mixture sequential probability ratio test (Robbins 1970; Johari et al.,
// "Always valid inference", 2017) on those tosses: the likelihood ratio of
// ρ against ρ0, mixed over a grid of alternatives ρ > ρ0. Under the null
// (ρ ≤ ρ0) it is a nonnegative supermartingale, so by Ville's inequality
// the chance that it *ever* reaches 1/α is at most α — however often it is
// looked at. That is what lets the canary check every scrape and roll back
// within seconds without inflating false rollbacks.

// mixture is the grid of alternatives, as multiples of ρ0, equally weighted.
var mixture = []float64{1.25, 1.5, 2, 3, 5, 10, 30, 100, 1000}

// Counts are the requests and bad requests of both sides over one window
// (counter deltas: a series born in the window counts from its first request).
type Counts struct {
	CanaryRequests, CanaryBad float64
	StableRequests, StableBad float64
}

// clamped is c with each side's bad requests within [0, requests]: the
// two counters of a side are read by separate queries, and a bad request
// can be counted a scrape before its request is.
func (c Counts) clamped() Counts {
	side := func(bad, requests float64) (float64, float64) {
		requests = math.Max(requests, 0)
		return math.Min(math.Max(bad, 0), requests), requests
	}
	c.CanaryBad, c.CanaryRequests = side(c.CanaryBad, c.CanaryRequests)
	c.StableBad, c.StableRequests = side(c.StableBad, c.StableRequests)
	return c
}

// Sequence is the evidence gathered over a step, a value: Add returns a
// new one, so deciding stays a pure function of what was observed.
type Sequence struct {
	Rho0   float64   // the tolerated ratio, 1 + maxIncrease
	Margin bool      // compare by an absolute margin instead (margin.go)
	Delta  float64   // the tolerated difference of the bad shares, with Margin
	Bound  bool      // hold the canary to a fixed bound instead (bound.go)
	Limit  float64   // the tolerated bad share of the canary, with Bound
	Total  Counts    // summed over every window so far
	LogLR  []float64 // per alternative in mixture
	Peak   float64   // the largest mixture likelihood ratio reached
	PeakAt time.Time // when it was reached
}

// NewSequence starts a comparison tolerating a canary bad share up to
// rho0 times the stable's (rho0 >= 1).
func NewSequence(rho0 float64) Sequence {
	return Sequence{Rho0: math.Max(rho0, 1), LogLR: make([]float64, len(mixture))}
}

// NewMargin starts a comparison tolerating a canary bad share up to
// delta (a share, 0 ≤ delta < 1) above the stable's.
func NewMargin(delta float64) Sequence {
	return Sequence{Rho0: 1, Margin: true, Delta: math.Min(math.Max(delta, 0), 0.999)}
}

// Add folds one window's counts in, observed at t.
func (s Sequence) Add(c Counts, t time.Time) Sequence {
	c = c.clamped()
	s.Total.CanaryRequests += c.CanaryRequests
	s.Total.CanaryBad += c.CanaryBad
	s.Total.StableRequests += c.StableRequests
	s.Total.StableBad += c.StableBad
	if !s.Margin && !s.Bound {
		s.LogLR = s.ratioTest(c)
	}
	if lr := s.LR(); lr > s.Peak {
		s.Peak, s.PeakAt = lr, t
	}
	return s
}

// ratioTest is the ratio test's log likelihood ratios after one more window.
func (s Sequence) ratioTest(c Counts) []float64 {
	logLR := append([]float64(nil), s.LogLR...)
	if c.CanaryRequests <= 0 || c.StableRequests <= 0 || c.CanaryBad+c.StableBad <= 0 {
		return logLR // no bad request, or no traffic on one side: nothing to compare
	}
	f := c.CanaryRequests / (c.CanaryRequests + c.StableRequests)
	theta := func(rho float64) float64 { return f * rho / (f*rho + 1 - f) }
	t0 := theta(s.Rho0)
	for j, m := range mixture {
		t1 := theta(s.Rho0 * m)
		logLR[j] += c.CanaryBad*math.Log(t1/t0) + c.StableBad*math.Log((1-t1)/(1-t0))
	}
	return logLR
}

// LR is the mixture likelihood ratio now (with Margin, the evidence e;
// with Bound, M⁺ at the limit).
func (s Sequence) LR() float64 {
	switch {
	case s.Margin:
		return marginEvidence(s.Total, s.Delta)
	case s.Bound:
		return boundEvidence(s.Total, s.Limit)
	}
	top := math.Inf(-1)
	for _, l := range s.LogLR {
		top = math.Max(top, l)
	}
	if math.IsInf(top, -1) {
		return 1
	}
	sum := 0.0
	for _, l := range s.LogLR {
		sum += math.Exp(l - top)
	}
	return math.Exp(top) * sum / float64(len(s.LogLR))
}

// Confidence is how sure the evidence is, at its strongest so far, that
// the canary is worse than tolerated: 1 − 1/LR (an always-valid p-value
// of min(1, 1/LR)).
func (s Sequence) Confidence() float64 {
	return math.Max(0, 1-1/math.Max(s.Peak, 1))
}

// Worse reports whether the evidence has reached confidence (e.g. 0.99).
func (s Sequence) Worse(confidence float64) bool {
	return s.Peak >= 1/(1-confidence)
}

// Ratio is the observed ratio of the canary's bad share to the stable's:
// the effect size the tolerance rho0 is about (+Inf when the stable had
// none bad and the canary some; NaN without traffic).
func (s Sequence) Ratio() float64 {
	c, t := s.Total, s.Total
	if c.CanaryRequests == 0 || t.StableRequests == 0 {
		return math.NaN()
	}
	qc, qs := c.CanaryBad/c.CanaryRequests, t.StableBad/t.StableRequests
	if qs == 0 {
		if qc == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return qc / qs
}

// Difference is the canary's bad share minus the stable's (NaN without
// traffic): the effect size a Margin is about.
func (s Sequence) Difference() float64 {
	t := s.Total
	if t.CanaryRequests == 0 || t.StableRequests == 0 {
		return math.NaN()
	}
	return t.CanaryBad/t.CanaryRequests - t.StableBad/t.StableRequests
}

// Explain is the comparison in words, with both sides' counts (with
// Bound, the canary's and its bound).
func (s Sequence) Explain(what string) string {
	t := s.Total
	if s.Bound {
		return fmt.Sprintf("canary %s of %s requests %s (%s), at most %s tolerated; confidence %s (likelihood ratio %s)",
			count(t.CanaryBad), count(t.CanaryRequests), what, percent(t.CanaryBad, t.CanaryRequests),
			percent(s.Limit, 1), confidence(s.Confidence()), likelihood(s.Peak))
	}
	effect := fmt.Sprintf("ratio %s, tolerated %s", ratio(s.Ratio()), ratio(s.Rho0))
	if s.Margin {
		effect = fmt.Sprintf("difference %s, tolerated %s", points(s.Difference()), points(s.Delta))
	}
	return fmt.Sprintf("canary %s of %s requests %s (%s), stable %s of %s (%s); %s; confidence %s (likelihood ratio %s)",
		count(t.CanaryBad), count(t.CanaryRequests), what, percent(t.CanaryBad, t.CanaryRequests),
		count(t.StableBad), count(t.StableRequests), percent(t.StableBad, t.StableRequests),
		effect, confidence(s.Confidence()), likelihood(s.Peak))
}

// points writes a difference of shares in percentage points.
func points(d float64) string {
	if math.IsNaN(d) {
		return "unknown"
	}
	p := 100 * d
	if p != 0 && math.Abs(p) < 0.1 {
		return fmt.Sprintf("%+.2g points", p)
	}
	return fmt.Sprintf("%+.1f points", p)
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

func percent(part, whole float64) string {
	if whole <= 0 {
		return "no requests"
	}
	p := 100 * part / whole
	if p != 0 && p < 0.1 {
		return fmt.Sprintf("%.2g %%", p)
	}
	return fmt.Sprintf("%.1f %%", p)
}

func ratio(r float64) string {
	switch {
	case math.IsNaN(r):
		return "unknown"
	case math.IsInf(r, 1):
		return "∞ (stable had none)"
	}
	return fmt.Sprintf("×%.2f", r)
}

func confidence(c float64) string {
	if c > 0.999 {
		return "> 99.9 %"
	}
	return fmt.Sprintf("%.1f %%", 100*c)
}

func likelihood(lr float64) string {
	if lr >= 1e4 {
		return fmt.Sprintf("%.1e", lr)
	}
	return fmt.Sprintf("%.0f", math.Max(lr, 1))
}
