package pipeline

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Glob matches slash-separated names (branches, tags, file paths) with
// doublestar's rules: each segment as path.Match, plus {a,b}
// alternatives; a segment of exactly "**" matches any number of segments,
// including none. "main", "release/*" and "services/order/**" are typical.
type Glob struct {
	pattern string
}

// CompileGlob checks the pattern once so matching cannot fail later.
// "**" must be a whole segment: "a**" is refused rather than read as "a*".
func CompileGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, fmt.Errorf("empty pattern")
	}
	for _, p := range strings.Split(pattern, "/") {
		if p != "**" && strings.Contains(p, "**") {
			return Glob{}, fmt.Errorf("bad pattern %q: ** must be a whole path segment", pattern)
		}
	}
	if !doublestar.ValidatePattern(pattern) {
		return Glob{}, fmt.Errorf("bad pattern %q: %v", pattern, doublestar.ErrBadPattern)
	}
	return Glob{pattern: pattern}, nil
}

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// Match reports whether name matches the whole pattern.
func (g Glob) Match(name string) bool { return doublestar.MatchUnvalidated(g.pattern, name) }

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
