package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Healthy canaries by the margin's own definition — the canary's bad
// share equal to the stable's, or exactly the tolerated margin above it —
// are rolled back at most 1 − confidence of the time, checked every
// second for a minute.
func TestMarginRarelyRollsBackAHealthyCanary(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for _, tt := range []struct {
		sc    scenario
		delta float64
	}{
		{scenario{canaryRPS: 4, stableRPS: 36, canaryQ: 0.01, stableQ: 0.01, seconds: 60}, 0},
		{scenario{canaryRPS: 40, stableRPS: 360, canaryQ: 0.001, stableQ: 0.001, seconds: 60}, 0},
		{scenario{canaryRPS: 4, stableRPS: 36, canaryQ: 0.015, stableQ: 0.01, seconds: 60}, 0.005},  // exactly at the margin
		{scenario{canaryRPS: 40, stableRPS: 360, canaryQ: 0.206, stableQ: 0.2, seconds: 60}, 0.006}, // at the margin, much bad
		{scenario{canaryRPS: 1, stableRPS: 9, canaryQ: 0, stableQ: 0, seconds: 60}, 0},              // never bad
	} {
		rate := tt.sc.rolledBack(r, NewMargin(tt.delta), 10000)
		t.Logf("healthy %+v, margin %g points: %.2f %% of 10,000 rolled back", tt.sc, 100*tt.delta, 100*rate)
		if rate > 0.01 {
			t.Errorf("healthy canaries %+v with margin %g rolled back %.2f %% of the time, more than the 1 %% the confidence allows", tt.sc, tt.delta, 100*rate)
		}
	}
}

// Bad canaries against a margin of 0.5 points: detection probability and
// median time at 1, 4 and 40 canary requests/s (reported; the gross
// failure must be caught within 3 s at 4 req/s).
func TestMarginCatchesBadCanaries(t *testing.T) {
	t.Parallel()
	detect(t, rand.New(rand.NewPCG(7, 8)), "margin 0.5 points", func() Sequence { return NewMargin(0.005) }, 1000)
}

// The margin at its boundaries: no traffic is no evidence; observed shares
// within the margin are none either, however many requests; a gross
// failure is, with the difference in points in words.
func TestMarginBoundaries(t *testing.T) {
	t.Parallel()
	at := time.Unix(100, 0)
	if s := NewMargin(0).Add(Counts{StableRequests: 90, StableBad: 90}, at); s.LR() != 1 || s.Worse(0.5) {
		t.Errorf("no canary traffic: evidence %g", s.LR())
	}
	if s := NewMargin(0).Add(Counts{CanaryRequests: 1e6, StableRequests: 1e6}, at); s.LR() != 1 {
		t.Errorf("nothing bad on either side: evidence %g", s.LR())
	}
	// A canary observed exactly at the margin, for a million requests.
	within := NewMargin(0.01).Add(Counts{CanaryRequests: 1e6, CanaryBad: 2e4, StableRequests: 9e6, StableBad: 9e4}, at)
	if within.LR() != 1 {
		t.Errorf("a canary 1 point worse with a 1 point margin: evidence %g, want 1", within.LR())
	}
	// 1.2 points worse with a 1 point margin: conclusive with this much traffic.
	over := NewMargin(0.01).Add(Counts{CanaryRequests: 1e6, CanaryBad: 2.2e4, StableRequests: 9e6, StableBad: 9e4}, at)
	if !over.Worse(0.999) {
		t.Errorf("1.2 points worse over a million requests: evidence %g", over.LR())
	}
	bad := NewMargin(0.005)
	for i := range 3 {
		bad = bad.Add(Counts{CanaryRequests: 4, CanaryBad: 4, StableRequests: 36}, at.Add(time.Duration(i)*time.Second))
	}
	if !bad.Worse(0.99) {
		t.Fatalf("100 %% errors for 3 s: evidence %g", bad.LR())
	}
	want := "canary 12 of 12 requests failed (100.0 %), stable 0 of 108 (0.0 %); difference +100.0 points, tolerated +0.5 points; confidence"
	if got := bad.Explain("failed"); !strings.HasPrefix(got, want) {
		t.Errorf("Explain = %q", got)
	}
	if got := NewMargin(0.0005).Explain("failed"); !strings.Contains(got, "difference unknown, tolerated +0.05 points") {
		t.Errorf("Explain without traffic = %q", got)
	}
	for _, tt := range []struct {
		k, n float64
	}{{0, 10}, {10, 10}, {3, 10}} { // the mixtures stay finite and nonnegative at the edges
		for _, q := range []float64{0, 0.3, 1} {
			for _, above := range []bool{true, false} {
				if v := newSide(tt.k, tt.n).mixture(q, above); math.IsNaN(v) || v < 0 {
					t.Errorf("mixture(%g) of %g bad in %g, above %v = %g", q, tt.k, tt.n, above, v)
				}
			}
		}
	}
}
