package pipeline

import "testing"

func TestNormalizeRef(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "refs/heads/main", "feature/x": "refs/heads/feature/x", "refs/tags/v1": "refs/tags/v1"} {
		if got, err := NormalizeRef(in, "main"); err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"--upload-pack=x", "a b", "a..b", "x~1", "HEAD@{1}", "a:b", string(make([]byte, 300))} {
		if _, err := NormalizeRef(bad, "main"); err == nil {
			t.Errorf("NormalizeRef(%q) accepted a bad ref", bad)
		}
	}
	for s, want := range map[string]bool{"0123abc": true, "0123ab": false, "0123ABC": false, "xyz1234": false} {
		if IsCommitID(s) != want {
			t.Errorf("IsCommitID(%q) = %v", s, !want)
		}
	}
}
