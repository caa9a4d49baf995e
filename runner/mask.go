package runner

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
)

// Masked is what a secret is replaced with in logs, errors, events and
// stage outputs.
const Masked = "***"

// defaultUsernames are the user names tokens commonly go with in HTTP
// Basic auth and Docker config `auth` fields.
var defaultUsernames = []string{"x-access-token", "oauth2", "git", "token", "AWS"}

// masker replaces every known secret value, and the forms in which it
// commonly leaks, with Masked.
type masker struct {
	r       *strings.Replacer
	forms   []string // longest first
	longest int
}

// newMasker builds a masker for values. Each value (and each line of a
// multi-line value, since logs are stored a line at a time) is masked:
//   - as written, URL-encoded (query and path forms) and hex (both cases);
//   - base64 in the standard and URL alphabets, padded and not, and at each
//     of the three byte offsets it may sit at inside a longer encoded text
//     (the characters that depend on the value alone);
//   - base64 of USER:VALUE for each of usernames and the usual token user
//     names (HTTP Basic auth, Docker config `auth`).
func newMasker(values []string, usernames ...string) *masker {
	forms := map[string]bool{}
	add := func(s string) {
		if strings.TrimSpace(s) != "" {
			forms[s] = true
		}
	}
	users := slices.Concat(usernames, defaultUsernames)
	for _, v := range values {
		for _, s := range append([]string{v}, strings.Split(v, "\n")...) {
			s = strings.TrimRight(s, "\r")
			add(s)
			add(url.QueryEscape(s))
			add(url.PathEscape(s))
			if len(s) < 3 {
				continue // the encodings of one or two bytes are too common to mask
			}
			add(hex.EncodeToString([]byte(s)))
			add(strings.ToUpper(hex.EncodeToString([]byte(s))))
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				add(enc.EncodeToString([]byte(s)))
				add(enc.WithPadding(base64.NoPadding).EncodeToString([]byte(s)))
				for _, f := range base64Offsets(enc, s) {
					add(f)
				}
				for _, u := range users {
					if u != "" {
						add(enc.EncodeToString([]byte(u + ":" + s)))
					}
				}
			}
		}
	}
	if len(forms) == 0 {
		return &masker{}
	}
	// Longest first, so a value is never half-masked by one of its parts.
	list := make([]string, 0, len(forms))
	for f := range forms {
		list = append(list, f)
	}
	slices.SortFunc(list, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(list))
	for _, f := range list {
		pairs = append(pairs, f, Masked)
	}
	return &masker{r: strings.NewReplacer(pairs...), forms: list, longest: len(list[0])}
}

// base64Offsets returns, for each byte offset k (0, 1, 2) at which s may
// start inside a longer text being encoded, the encoded characters that
// depend on s alone: character i covers bits [6i, 6i+6), s covers bits
// [8k, 8(k+n)).
func base64Offsets(enc *base64.Encoding, s string) []string {
	var out []string
	n := len(s)
	for k := range 3 {
		full := enc.WithPadding(base64.NoPadding).EncodeToString(append(make([]byte, k), s...))
		from, to := (8*k+5)/6, 8*(k+n)/6
		if to-from >= 4 {
			out = append(out, full[from:to])
		}
	}
	return out
}

// Mask returns s with every secret form replaced. A nil masker masks nothing.
func (m *masker) Mask(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}

// MaskMap returns a copy of values with each value masked.
func (m *masker) MaskMap(values map[string]string) map[string]string {
	if values == nil {
		return nil
	}
	out := make(map[string]string, len(values))
	for k, v := range values {
		out[k] = m.Mask(v)
	}
	return out
}

// safeCut returns a position at or before cut where text may be split
// without cutting any secret form in two: a form that spans cut moves
// whole to the second part. Forms longer than cut cannot be kept whole and
// are ignored.
func (m *masker) safeCut(text string, cut int) int {
	if m == nil {
		return cut
	}
	for moved := true; moved; {
		moved = false
		for _, f := range m.forms {
			if len(f) >= cut {
				continue
			}
			lo, hi := max(0, cut-len(f)+1), min(len(text), cut+len(f)-1)
			if i := strings.Index(text[lo:hi], f); i >= 0 && lo+i < cut {
				cut, moved = lo+i, true
			}
		}
	}
	return cut
}

// longestForm is the length of the longest form masked (0 for none).
func (m *masker) longestForm() int {
	if m == nil {
		return 0
	}
	return m.longest
}
