package pipeline

import "testing"

func TestTolerance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in            string
		ratio, margin float64
		absolute      bool
	}{
		{"", 1, 0, false},
		{"10%", 1.1, 0, false},
		{" 0 % ", 1, 0, false},
		{"0.5pp", 1, 0.005, true},
		{"0pp", 1, 0, true},
		{"99pp", 1, 0.99, true},
	} {
		ratio, margin, absolute := Metric{MaxIncrease: tt.in}.Tolerance()
		if ratio != tt.ratio || margin != tt.margin || absolute != tt.absolute {
			t.Errorf("Tolerance(%q) = %g, %g, %v; want %g, %g, %v", tt.in, ratio, margin, absolute, tt.ratio, tt.margin, tt.absolute)
		}
	}
}
