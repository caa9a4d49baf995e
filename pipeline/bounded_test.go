package pipeline

import (
	"strings"
	"testing"
	"time"
)

// doubling is a template that doubles a value n times through a variable:
// 2^n copies of x from a few hundred bytes of text.
func doubling(n int) string {
	return `{{$a := print "xxxxxxxxxxxxxxxx"}}` + strings.Repeat(`{{$a = print $a $a}}`, n) + `{{$a}}`
}

// What a template may make the engine do is bounded where it is rendered:
// each value a function makes, each render's output, and a run's renders
// together — each refusal a sentence, never the engine's memory.
func TestRendersAreBounded(t *testing.T) {
	t.Parallel()
	value := `{{$v := print "` + strings.Repeat("y", 4000) + `"}}`
	for _, tt := range []struct {
		name, text, want string
	}{
		{"a value doubled 40 times", doubling(40), "print was given 8192 bytes, more than the 4096"},
		{"a constant passed many times", `{{$s := "` + strings.Repeat("A", 4000) + `"}}{{print` + strings.Repeat(" $s", 20000) + `}}`, "print was given 80000000 bytes"},
		{"a long constant", `{{$s := "` + strings.Repeat("A", 5000) + `"}}`, "a string constant of 5000 bytes"},
		{"functions making much together", `{{$s := "` + strings.Repeat("A", 4000) + `"}}` + strings.Repeat(`{{$t := print $s}}`, 100), "the template's functions made more than 262144 bytes"},
		{"a value doubled 7 times", doubling(7), ""},
		{"an output past its bound", value + strings.Repeat("{{$v}}", 20), "the template's output passed 65536 bytes"},
		{"a format built at run time", `{{printf .Params.f 1}}`, `printf directive "%0999999d"`},
		{"integer range", `{{range 1000000}}x{{end}}`, "range is not allowed"},
		{"padding", `{{printf "%01000000d" 0}}`, `printf directive "%01000000d"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Time enough that the bound met is the one the case is
			// about, however busy the machine (time has its own test).
			out, err := executeWithin("f", tt.text, &Data{Params: map[string]string{"f": "%0999999d"}}, time.Hour)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("RenderString: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("RenderString = %d bytes, %v; want an error saying %q", len(out), err, tt.want)
			}
		})
	}
}

// A render that runs past its time stops with a sentence, whether a
// function or the output meets the deadline.
func TestRendersAreTimed(t *testing.T) {
	t.Parallel()
	for _, text := range []string{`{{print "a"}}`, `{{.App}}`} {
		if out, err := executeWithin("f", text, &Data{App: "a"}, -time.Second); err == nil || !strings.Contains(err.Error(), "the template ran longer than -1s") {
			t.Errorf("%s past its deadline = %q, %v; want it stopped", text, out, err)
		}
	}
}

// A run's templates share one budget: renders that each fit stop, with a
// sentence, once together they pass it.
func TestARunsRendersShareABudget(t *testing.T) {
	t.Parallel()
	data := (&Data{App: strings.Repeat("a", 1000)}).Charging(NewBudget(10_000))
	var err error
	n := 0
	for ; n < 100 && err == nil; n++ {
		_, err = RenderString("f", "{{.App}}", data)
	}
	if err == nil || n != 11 || !strings.Contains(err.Error(), "rendered more than their budget") {
		t.Errorf("after %d renders of 1000 bytes: %v; want the 11th refused by a 10,000-byte budget", n, err)
	}
}

// BenchmarkTemplateBomb measures what the engine spends on the hostile
// templates refused above: each must cost about what a render of its
// bound does, not what the template asks for (see B/op).
func BenchmarkTemplateBomb(b *testing.B) {
	for _, bench := range []struct{ name, text string }{
		{"doubling-40", doubling(40)},
		{"constant-x20000", `{{$s := "` + strings.Repeat("A", 4000) + `"}}{{print` + strings.Repeat(" $s", 20000) + `}}`},
		{"padding", `{{printf .Params.f 0}}`},
		{"output", `{{$v := print "` + strings.Repeat("y", 4000) + `"}}` + strings.Repeat("{{$v}}", 1000)},
	} {
		b.Run(bench.name, func(b *testing.B) {
			b.ReportAllocs()
			data := &Data{Params: map[string]string{"f": "%0999999d"}}
			for b.Loop() {
				if _, err := RenderString("f", bench.text, data); err == nil {
					b.Fatal("the bomb rendered")
				}
			}
		})
	}
}
