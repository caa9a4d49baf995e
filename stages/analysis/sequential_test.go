package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/slipwayci/slipway/pipeline"
)

// poisson draws a Poisson variate.
func poisson(r *rand.Rand, lambda float64) float64 {
	return distuv.Poisson{Lambda: lambda, Src: r}.Rand()
}

// binomial draws how many of n requests are bad, each with probability q.
func binomial(r *rand.Rand, n, q float64) float64 {
	if n == 0 || q == 0 {
		return 0
	}
	if q == 1 {
		return n
	}
	return distuv.Binomial{N: n, P: q, Src: r}.Rand()
}

// scenario is a canary step: requests per second on each side, each
// side's bad share, checked every second for the step's length.
type scenario struct {
	canaryRPS, stableRPS float64
	canaryQ, stableQ     float64
	seconds              int
}

// run simulates one step and returns whether the test called the canary
// worse, and after how many seconds.
func (sc scenario) run(r *rand.Rand, s Sequence, confidence float64) (bool, int) {
	t0 := time.Unix(0, 0)
	for sec := 1; sec <= sc.seconds; sec++ {
		c := Counts{CanaryRequests: poisson(r, sc.canaryRPS), StableRequests: poisson(r, sc.stableRPS)}
		c.CanaryBad, c.StableBad = binomial(r, c.CanaryRequests, sc.canaryQ), binomial(r, c.StableRequests, sc.stableQ)
		s = s.Add(c, t0.Add(time.Duration(sec)*time.Second))
		if s.Worse(confidence) {
			return true, sec
		}
	}
	return false, 0
}

// rolledBack is the share of n runs of sc that start's evidence called
// worse at confidence 0.99.
func (sc scenario) rolledBack(r *rand.Rand, start Sequence, n int) float64 {
	rolled := 0
	for range n {
		if worse, _ := sc.run(r, start, 0.99); worse {
			rolled++
		}
	}
	return float64(rolled) / float64(n)
}

// Over 10,000 healthy canaries (the canary's error share equal to the
// stable's), checked every second for a minute, the false-rollback rate
// stays at most 1 − confidence — the point of an always-valid test.
func TestHealthyCanariesAreRarelyRolledBack(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, sc := range []scenario{
		{canaryRPS: 4, stableRPS: 36, canaryQ: 0.01, stableQ: 0.01, seconds: 60},
		{canaryRPS: 40, stableRPS: 360, canaryQ: 0.001, stableQ: 0.001, seconds: 60},
		{canaryRPS: 4, stableRPS: 36, canaryQ: 0.2, stableQ: 0.2, seconds: 60}, // everything is bad today
	} {
		rate := sc.rolledBack(r, NewSequence(1), 10000)
		t.Logf("healthy %+v: %.2f %% of 10,000 rolled back", sc, 100*rate)
		if rate > 0.01 {
			t.Errorf("healthy canaries %+v rolled back %.2f %% of the time, more than the 1 %% the confidence allows", sc, 100*rate)
		}
	}
}

// Bad canaries are caught, and fast: detection probability and median
// time for gross and subtle failures at 1, 4 and 40 canary requests/s
// (reported; the gross failure must be caught within 3 s at 4 req/s).
func TestBadCanariesAreCaught(t *testing.T) {
	t.Parallel()
	detect(t, rand.New(rand.NewPCG(3, 4)), "ratio", func() Sequence { return NewSequence(1) }, 2000)
}

// detect runs n bad canaries of each kind at 1, 4 and 40 requests/s
// against the comparison start makes, and logs how many were caught and
// how fast; 100 % 5xx at 4 req/s must be caught within 3 s.
func detect(t *testing.T, r *rand.Rand, label string, start func() Sequence, n int) {
	for _, tt := range []struct {
		name             string
		canaryQ, stableQ float64
	}{
		{"100 % 5xx", 1, 0.001},
		{"5 % vs 0.1 % 5xx", 0.05, 0.001},
		{"slow: 50 % vs 1 % above the stable's p99", 0.5, 0.01},
	} {
		for _, rps := range []float64{1, 4, 40} {
			sc := scenario{canaryRPS: rps, stableRPS: 9 * rps, canaryQ: tt.canaryQ, stableQ: tt.stableQ, seconds: 60}
			caught, times := 0, []int{}
			for range n {
				if worse, at := sc.run(r, start(), 0.99); worse {
					caught++
					times = append(times, at)
				}
			}
			median := 0
			if len(times) > 0 {
				median = sortedMedian(times)
			}
			t.Logf("%s, %s at %g canary req/s: caught %.1f %% within 60 s, median %d s", label, tt.name, rps, 100*float64(caught)/float64(n), median)
			if tt.canaryQ == 1 && rps == 4 && (caught < n*99/100 || median > 3) {
				t.Errorf("%s, 100 %% 5xx at 4 req/s: caught %d of %d, median %d s; want ≥ 99 %% within 3 s", label, caught, n, median)
			}
		}
	}
}

func sortedMedian(xs []int) int {
	counts := map[int]int{}
	for _, x := range xs {
		counts[x]++
	}
	seen := 0
	for v := 0; ; v++ {
		seen += counts[v]
		if seen*2 >= len(xs) {
			return v
		}
	}
}

// The comparison at its boundaries: no traffic or no bad request is no
// evidence; a bad share within the tolerance never becomes evidence;
// a gross failure does, with its numbers in words.
func TestSequenceBoundaries(t *testing.T) {
	t.Parallel()
	at := time.Unix(100, 0)
	s := NewSequence(1).Add(Counts{}, at).Add(Counts{CanaryRequests: 10, StableRequests: 90}, at)
	if s.LR() != 1 || s.Worse(0.5) || s.Confidence() != 0 {
		t.Errorf("no bad requests: LR %g, confidence %g", s.LR(), s.Confidence())
	}
	s = NewSequence(1).Add(Counts{CanaryRequests: 0, CanaryBad: 0, StableRequests: 90, StableBad: 9}, at)
	if s.LR() != 1 {
		t.Errorf("no canary traffic: LR %g, want 1", s.LR())
	}
	// Exactly as bad as tolerated, many times over: the LR falls.
	tol := NewSequence(2)
	for range 100 {
		tol = tol.Add(Counts{CanaryRequests: 10, CanaryBad: 2, StableRequests: 90, StableBad: 9}, at)
	}
	if tol.LR() >= 1 || tol.Worse(0.9) {
		t.Errorf("a canary at exactly the tolerated ratio: LR %g", tol.LR())
	}
	bad := NewSequence(1)
	for i := range 3 {
		bad = bad.Add(Counts{CanaryRequests: 4, CanaryBad: 4, StableRequests: 36, StableBad: 0}, at.Add(time.Duration(i)*time.Second))
	}
	if !bad.Worse(0.99) || !math.IsInf(bad.Ratio(), 1) {
		t.Fatalf("100 %% errors for 3 s: LR %g, ratio %g", bad.LR(), bad.Ratio())
	}
	if got, want := bad.Explain("failed"), "canary 12 of 12 requests failed (100.0 %), stable 0 of 108 (0.0 %); ratio ∞ (stable had none), tolerated ×1.00; confidence"; got[:len(want)] != want {
		t.Errorf("Explain = %q", got)
	}
	if bad.PeakAt.IsZero() || bad.PeakAt.After(at.Add(2*time.Second)) {
		t.Errorf("conclusive at %v", bad.PeakAt)
	}
}

// The two counters of a side are read by separate queries: a window may
// hold more bad requests than requests (the bad one counted a scrape
// early), or negative deltas. Both tests take them clamped, and neither
// panics nor concludes from the excess.
func TestCountsReadAcrossScrapesAreClamped(t *testing.T) {
	t.Parallel()
	odd := Counts{CanaryRequests: 2, CanaryBad: 3, StableRequests: 22, StableBad: -1}
	now := time.Now()
	for _, s := range []Sequence{NewSequence(1), NewMargin(0.005)} {
		got := s.Add(odd, now)
		if got.Total != (Counts{CanaryRequests: 2, CanaryBad: 2, StableRequests: 22, StableBad: 0}) {
			t.Errorf("margin %v: totals %+v", s.Margin, got.Total)
		}
		if lr := got.LR(); math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 {
			t.Errorf("margin %v: likelihood ratio %v", s.Margin, lr)
		}
	}
	if c := (Totals{CanaryRequests: 10, CanaryBad: 4}).Since(Totals{CanaryRequests: 9, CanaryBad: 1}); c.CanaryBad != 1 {
		t.Errorf("Since: %+v", c)
	}
	// Too few requests for a value: the comparison's explanation still
	// leads the message, the shortfall follows.
	seq := NewSequence(1).Add(Counts{CanaryRequests: 2, CanaryBad: 2, StableRequests: 40}, now)
	m := FromCounts(pipeline.Metric{Name: "errors-vs-stable", Builtin: "request-success-rate"}, Counts{CanaryRequests: 2, CanaryBad: 2, StableRequests: 40}, &seq, 3, nil, now)
	if m.Outcome != Inconclusive || !strings.HasPrefix(m.Message, "canary 2 of 2 requests failed") || !strings.HasSuffix(m.Message, "fewer than minRequests 3") {
		t.Errorf("%s: %s", m.Outcome, m.Message)
	}
}
