package pipeline

import (
	"fmt"
	"strings"
)

// NormalizeRef checks a git ref given by a person or an API call and
// completes it: "" means defaultBranch, a bare name is a branch
// (refs/heads/NAME). Refs that could be read as command-line options, or
// that git would refuse, are errors.
func NormalizeRef(ref, defaultBranch string) (string, error) {
	if ref == "" {
		ref = defaultBranch
	}
	if ref == "" || strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \t\n~^:?*[\\\x00") ||
		strings.Contains(ref, "..") || strings.Contains(ref, "@{") || len(ref) > 255 {
		return "", fmt.Errorf("ref %q is not a valid git ref", ref)
	}
	if !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	return ref, nil
}

// IsCommitID reports whether s looks like a (possibly abbreviated) commit
// id: 7 to 64 lower-case hex digits.
func IsCommitID(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}
