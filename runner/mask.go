package runner

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// Masked is what a secret is replaced with in logs, errors and events.
const Masked = "***"

// masker replaces every known secret value, and the forms in which it
// commonly leaks, with Masked.
type masker struct {
	r *strings.Replacer
}

// newMasker builds a masker for values. Each value is masked as written,
// base64-encoded (standard and URL alphabets, with and without padding)
// and URL-encoded (query and path forms); a multi-line value (a PEM key)
// is also masked line by line, since logs are stored one line at a time.
func newMasker(values []string) *masker {
	forms := map[string]bool{}
	add := func(s string) {
		if strings.TrimSpace(s) != "" {
			forms[s] = true
		}
	}
	for _, v := range values {
		for _, s := range append([]string{v}, strings.Split(v, "\n")...) {
			s = strings.TrimRight(s, "\r")
			add(s)
			add(url.QueryEscape(s))
			add(url.PathEscape(s))
			if len(s) < 3 {
				continue // the encodings of one or two bytes are too common to mask
			}
			add(base64.StdEncoding.EncodeToString([]byte(s)))
			add(base64.RawStdEncoding.EncodeToString([]byte(s)))
			add(base64.URLEncoding.EncodeToString([]byte(s)))
			add(base64.RawURLEncoding.EncodeToString([]byte(s)))
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
	return &masker{r: strings.NewReplacer(pairs...)}
}

// Mask returns s with every secret form replaced. A nil masker masks nothing.
func (m *masker) Mask(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}
