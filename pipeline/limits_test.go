package pipeline

import "testing"

// Every quantity validation accepts is read, in its base unit: a size
// written with an unusual suffix is held to the limit like any other.
func TestQuantitiesAreReadInEveryUnit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		q    string
		want float64
		ok   bool
	}{
		{"2", 2, true}, {"500m", 0.5, true}, {".5", 0.5, true}, {"1k", 1e3, true}, {"0.000004M", 4, true},
		{"1G", 1e9, true}, {"1T", 1e12, true}, {"1P", 1e15, true}, {"0.0001E", 1e14, true},
		{"512Mi", 512 << 20, true}, {"8Gi", 8 << 30, true}, {"1Ti", 1 << 40, true}, {"1Pi", 1 << 50, true}, {"1Ei", 1 << 60, true},
		{"", 0, false}, {"lots", 0, false}, {"-1", 0, false}, {"1e3", 0, false}, {"1 Gi", 0, false}, {"1gi", 0, false}, {"Gi", 0, false}, {"1.", 0, false},
	} {
		got, ok := parseQuantity(tt.q)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseQuantity(%q) = %g, %v; want %g, %v", tt.q, got, ok, tt.want, tt.ok)
		}
		if ok != Quantity.MatchString(tt.q) {
			t.Errorf("%q: read %v, but validation says %v", tt.q, ok, Quantity.MatchString(tt.q))
		}
	}
}
