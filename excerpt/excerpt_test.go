package excerpt

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"  short answer\n", "short answer"},
		{"line\x1b[31mred\r\nnext\u009b.", "line [31mred  next ."},
		{"bad \xff byte", "bad ? byte"},
	} {
		if got := Of(tt.in); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := strings.Repeat("é", 150) // 300 bytes
	got := Of(long)
	if !utf8.ValidString(got) || len(got) > Max+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("Of(300 bytes) = %d bytes %q", len(got), got)
	}
	hostile := Of("\x1b]0;pwned\x07" + strings.Repeat("é", 300) + "\nsecret-tail")
	if strings.ContainsAny(hostile, "\x1b\x07\n") || strings.Contains(hostile, "secret-tail") {
		t.Errorf("Of(a title-setting escape and a tail) = %q", hostile)
	}
	if got := Of(strings.Repeat("x", 10<<20)); len(got) != Max+len("…") {
		t.Errorf("Of(10 MiB) = %d bytes", len(got))
	}
}
