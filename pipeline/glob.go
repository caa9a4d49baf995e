package pipeline

import (
	"fmt"
	"path"
	"strings"
)

// Glob matches slash-separated names (branches, tags, file paths). Each
// segment follows path.Match; a segment of exactly "**" matches any number
// of segments, including none. "main", "release/*" and "services/order/**"
// are typical.
type Glob struct {
	pattern string
	parts   []string
}

// CompileGlob checks the pattern once so matching cannot fail later.
func CompileGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, fmt.Errorf("empty pattern")
	}
	parts := strings.Split(pattern, "/")
	for _, p := range parts {
		if p == "**" {
			continue
		}
		if strings.Contains(p, "**") {
			return Glob{}, fmt.Errorf("bad pattern %q: ** must be a whole path segment", pattern)
		}
		if _, err := path.Match(p, ""); err != nil {
			return Glob{}, fmt.Errorf("bad pattern %q: %v", pattern, err)
		}
	}
	return Glob{pattern: pattern, parts: parts}, nil
}

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// Match reports whether name matches the whole pattern. It runs in
// O(pattern segments × name segments), whatever the number of "**".
func (g Glob) Match(name string) bool {
	segs := strings.Split(name, "/")
	// ok[i][j]: pattern parts[i:] matches segs[j:]; filled from the end.
	ok := make([][]bool, len(g.parts)+1)
	for i := range ok {
		ok[i] = make([]bool, len(segs)+1)
	}
	ok[len(g.parts)][len(segs)] = true
	for i := len(g.parts) - 1; i >= 0; i-- {
		for j := len(segs); j >= 0; j-- {
			if g.parts[i] == "**" {
				ok[i][j] = ok[i+1][j] || (j < len(segs) && ok[i][j+1])
				continue
			}
			if j < len(segs) {
				m, _ := path.Match(g.parts[i], segs[j])
				ok[i][j] = m && ok[i+1][j+1]
			}
		}
	}
	return ok[0][0]
}

// matchAny reports whether name matches one of the patterns; an empty list
// matches everything. Patterns were validated when the file was loaded.
func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if g, err := CompileGlob(p); err == nil && g.Match(name) {
			return true
		}
	}
	return false
}
