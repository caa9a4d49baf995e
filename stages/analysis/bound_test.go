package analysis

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Healthy canaries at their bound's very edge — a bad share exactly the
// one min or max allows — checked every second for a minute, are rolled
// back at most 1 − confidence of the time.
func TestBoundRarelyRollsBackAHealthyCanary(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 10))
	for _, tt := range []struct {
		rps, limit float64
	}{
		{1, 0.05}, {4, 0.05}, {40, 0.05}, // min: 95
		{4, 0.01}, {40, 0.01}, // min: 99
		{40, 0.001}, // min: 99.9
		{4, 0.5},    // half of them may fail
	} {
		sc := scenario{canaryRPS: tt.rps, canaryQ: tt.limit, seconds: 60}
		rate := sc.rolledBack(r, NewBound(tt.limit), 10000)
		t.Logf("healthy at the edge, %g req/s, %g %% bad of %g %% allowed: %.2f %% of 10,000 rolled back", tt.rps, 100*tt.limit, 100*tt.limit, 100*rate)
		if rate > 0.01 {
			t.Errorf("healthy canaries at %g req/s at the bound %g rolled back %.2f %% of the time, more than the 1 %% the confidence allows", tt.rps, tt.limit, 100*rate)
		}
	}
}

// Failing canaries against min: 99: detection probability and median
// time for 100 %, 50 % and 5 % failures at 1, 4 and 40 canary requests/s
// (reported; every request failing at 4 req/s must be caught within 3 s).
func TestBoundCatchesFailingCanaries(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	for _, q := range []float64{1, 0.5, 0.05} {
		for _, rps := range []float64{1, 4, 40} {
			sc := scenario{canaryRPS: rps, canaryQ: q, seconds: 60}
			const n = 1000
			caught, times := 0, []int{}
			for range n {
				if worse, at := sc.run(r, NewBound(0.01), 0.99); worse {
					caught++
					times = append(times, at)
				}
			}
			median := 0
			if len(times) > 0 {
				median = sortedMedian(times)
			}
			t.Logf("min 99, %g %% failing at %g canary req/s: caught %.1f %% within 60 s, median %d s", 100*q, rps, 100*float64(caught)/n, median)
			if q == 1 && rps == 4 && (caught < n*99/100 || median > 3) {
				t.Errorf("100 %% failing at 4 req/s: caught %d of %d, median %d s; want ≥ 99 %% within 3 s", caught, n, median)
			}
		}
	}
}

// The bound at its edges: no traffic is no evidence; a share at or below
// the bound is none however many requests; min: 100 makes one failure
// conclusive; min: 0 nothing; a gross failure is, in words with numbers.
func TestBoundBoundaries(t *testing.T) {
	t.Parallel()
	at := time.Unix(100, 0)
	for _, tt := range []struct {
		name       string
		limit      float64
		c          Counts
		conclusive bool
	}{
		{"no traffic", 0.05, Counts{}, false},
		{"only the stable's", 0.05, Counts{StableRequests: 100, StableBad: 100}, false},
		{"at the bound, a million requests", 0.05, Counts{CanaryRequests: 1e6, CanaryBad: 5e4}, false},
		{"below the bound", 0.05, Counts{CanaryRequests: 1e4, CanaryBad: 100}, false},
		{"just above, few requests", 0.05, Counts{CanaryRequests: 20, CanaryBad: 2}, false},
		{"far above, many requests", 0.05, Counts{CanaryRequests: 1e4, CanaryBad: 1000}, true},
		{"min 100, one failure", 0, Counts{CanaryRequests: 1, CanaryBad: 1}, true},
		{"min 100, none", 0, Counts{CanaryRequests: 1e6}, false},
		{"min 0, all failing", 1, Counts{CanaryRequests: 1e4, CanaryBad: 1e4}, false},
		{"every request failing, 10 of them", 0.05, Counts{CanaryRequests: 10, CanaryBad: 10}, true},
		{"more bad than requests read across scrapes: 3 of 3", 0.05, Counts{CanaryRequests: 3, CanaryBad: 5}, true},
		{"one of one failing is not enough", 0.05, Counts{CanaryRequests: 1, CanaryBad: 1}, false},
	} {
		s := NewBound(tt.limit).Add(tt.c, at)
		if got := s.Worse(0.99); got != tt.conclusive {
			t.Errorf("%s: conclusive %v (evidence %g), want %v", tt.name, got, s.LR(), tt.conclusive)
		}
		if !tt.conclusive && s.LR() > 100 {
			t.Errorf("%s: evidence %g without being conclusive", tt.name, s.LR())
		}
	}
	s := NewBound(0.05).Add(Counts{CanaryRequests: 12, CanaryBad: 12}, at)
	got := s.Explain("failed")
	for _, want := range []string{"canary 12 of 12 requests failed (100.0 %)", "at most 5.0 % tolerated", "confidence > 99.9 %"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation %q lacks %q", got, want)
		}
	}
	if !s.PeakAt.Equal(at) {
		t.Errorf("conclusive at %v, want %v", s.PeakAt, at)
	}
}
