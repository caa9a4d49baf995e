package release

import (
	"fmt"
	"math"
	"strings"
)

// FormatNumber is a measured value for people: at most three significant
// digits below 100, one decimal above, no exponent — 72.7, 0.0123, 1204.4
// — and "no data" for NaN. The log, the CLI, the API's messages and the
// UI all write values with it.
func FormatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "no data"
	case math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.3g", v)
	if strings.Contains(s, "e") {
		s = fmt.Sprintf("%.6f", v)
	}
	return s
}
