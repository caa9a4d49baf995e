package pipeline

import (
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"main", "main", true},
		{"main", "mainline", false},
		{"release/*", "release/1.2", true},
		{"release/*", "release/1.2/hotfix", false},
		{"services/order/**", "services/order/main.go", true},
		{"services/order/**", "services/order/internal/db/db.go", true},
		{"services/order/**", "services/order", true},
		{"services/order/**", "services/orders/main.go", false},
		{"**/*.md", "README.md", true},
		{"**/*.md", "docs/a/b/c.md", true},
		{"**", "anything/at/all", true},
		{"a/**/b/**/c", "a/x/y/b/c", true},
		{"a/**/b/**/c", "a/x/y/c", false},
		{"v[0-9]*", "v1.2.0", true},
		{"{main,release/*}", "release/2", true},
		{"{main,release/*}", "dev", false},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
		}
		if got := g.Match(tt.name); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestGlobRefusesBadPatterns(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "[a-", "a/**b", "x\\"} {
		if _, err := CompileGlob(p); err == nil {
			t.Errorf("CompileGlob(%q) accepted a bad pattern", p)
		}
	}
}

// Hostile patterns of many ** against deep paths must not backtrack
// exponentially; these would not finish if they did.
func TestGlobManyDoubleStarsStaysFast(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ pattern, name string }{
		{strings.Repeat("**/", 40) + "z", strings.Repeat("a/", 200) + "b"},
		{strings.Repeat("**/a/", 30) + "**/b", strings.Repeat("a/c/", 29) + "b"}, // one a short
		{strings.Repeat("**/a*/", 30) + "*b*/c", strings.Repeat("ab/", 200) + "d"},
	} {
		g, err := CompileGlob(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if g.Match(tt.name) {
			t.Errorf("%.30s… matched %.30s…", tt.pattern, tt.name)
		}
	}
}
