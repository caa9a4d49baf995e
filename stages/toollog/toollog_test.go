package toollog

import (
	"strings"
	"testing"
)

func TestWriterRewritesKanikoAndTrivyLines(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	k := NewWriter(&out, "kaniko")
	for _, chunk := range []string{
		`time="2026-12-02T08:38:02Z" level=info msg="Retrieving image manifest 127.0.0.1:46419/base/busybox:1"` + "\n",
		`time="2026-12-02T08:38:02Z" level=warning msg="Error while retrieving image from cache: \"unauthorized\"" image=x` + "\n" + "order-serv",
		"ice, built by kaniko\n",
		`time="2026-12-02T08:38:03Z" level=info msg=Done` + "\n",
		`time="2026-12-02T08:38:03Z" level=error msg="error building image: exit status 1"`,
	} {
		k.Write([]byte(chunk))
	}
	k.Close()
	tr := NewWriter(&out, "trivy")
	tr.Write([]byte("2026-12-02T08:55:19Z\tWARN\t[vulndb] Trivy DB may be outdated\n2026-12-02T08:55:19Z\tFATAL\tFatal error\trun error: init error\n"))
	want := `kaniko: Retrieving image manifest 127.0.0.1:46419/base/busybox:1
kaniko: WARNING: Error while retrieving image from cache: "unauthorized" image=x
order-service, built by kaniko
kaniko: Done
kaniko: ERROR: error building image: exit status 1
trivy: WARNING: [vulndb] Trivy DB may be outdated
trivy: FATAL: Fatal error: run error: init error
`
	if out.String() != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", out.String(), want)
	}
}

// Hostile tool output: a line longer than the bound is passed on in
// pieces rather than held, and text that only looks like a log line is
// left alone.
func TestWriterBoundsLongLines(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	w := NewWriter(&out, "kaniko")
	w.Write([]byte(strings.Repeat("x", 3*maxLine)))
	if len(w.buf) > maxLine {
		t.Errorf("holding %d bytes of one line", len(w.buf))
	}
	w.Close()
	if strings.Count(out.String(), "x") != 3*maxLine {
		t.Errorf("lost output: %d of %d bytes", strings.Count(out.String(), "x"), 3*maxLine)
	}
	for _, s := range []string{`time="x" level=info msg="unterminated`, "2026-12-02\tINFO\tno time", `level=info msg="no time"`} {
		if got := Rewrite("kaniko", s); got != s {
			t.Errorf("Rewrite(%q) = %q, want it unchanged", s, got)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`time="2026-12-02T08:38:02Z" level=info msg="a \"b\" c" k=v`)
	f.Add("2026-12-02T08:55:19Z\tFATAL\tFatal error\trun error")
	f.Fuzz(func(t *testing.T, s string) {
		if l, ok := Parse(s); ok && l.Level == "" {
			t.Errorf("Parse(%q) has no level", s)
		}
	})
}
