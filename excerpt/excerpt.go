// Package excerpt cuts what a remote answer said down to what an error
// may quote: a server the engine connects to (a forge, Prometheus, a
// notification receiver) writes that text, and it ends up in the run's
// reason, its log, the UI and a commit status.
package excerpt

import (
	"strings"
	"unicode/utf8"
)

// Max is how many bytes of a remote answer an error quotes.
const Max = 200

// Of is s's first Max bytes at most (cut on a character boundary, "…"
// marking the cut), invalid UTF-8 replaced and control characters made
// spaces.
func Of(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "?")
	if len(s) > Max {
		cut := Max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return ' '
		}
		return r
	}, s)
}
