// Package benchreport reports what end-to-end benchmarks measure: the
// p50 and max of each phase of something done several times (a push
// reaching production, a rollback), as benchmark metrics and a log line.
// For _test.go files only.
package benchreport

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Median is the middle of ds (the upper one of an even count).
func Median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Phases reports each named phase's p50 and max (as NAME-p50-ms and
// NAME-max-ms) and logs them in a line headed by what.
func Phases(b *testing.B, what string, phases map[string][]time.Duration, names ...string) {
	b.Helper()
	var report []string
	for _, name := range names {
		ds := phases[name]
		if len(ds) == 0 {
			b.Errorf("phase %s was never measured", name)
			continue
		}
		p50, maxd := Median(ds), slices.Max(ds)
		b.ReportMetric(float64(p50.Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(maxd.Milliseconds()), name+"-max-ms")
		report = append(report, fmt.Sprintf("%s p50 %s max %s", name, p50.Round(time.Millisecond), maxd.Round(time.Millisecond)))
	}
	b.Logf("%s: %s", what, strings.Join(report, "; "))
}
