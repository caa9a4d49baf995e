package web

import (
	"io/fs"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNumbersAreForPeople(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{72.72727272727273, "72.7"}, {99, "99"}, {0.012345, "0.0123"}, {1.05, "1.05"}, {1204.4, "1204.4"},
		{math.NaN(), "no data"}, {1e-9, "0.000000"}, {-3.5, "-3.5"},
	} {
		if got := Number(tt.v); got != tt.want {
			t.Errorf("Number(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{840 * time.Millisecond: "840 ms", 4200 * time.Millisecond: "4.2 s",
		185 * time.Second: "3 min 05 s", 130 * time.Minute: "2 h 10 min"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// A chart draws one marker per point, by outcome shape, thresholds as
// lines, and stays well-formed with no data or a single value.
func TestChartSVG(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	minV := 99.0
	c := Chart{Title: "success-rate", Min: &minV, Points: []Point{
		{At: t0, Value: 99.5, Outcome: "pass"}, {At: t0.Add(time.Second), Value: 72.7, Outcome: "fail", Decisive: true},
		{At: t0.Add(2 * time.Second), Value: math.NaN(), Outcome: "error"}, {At: t0.Add(3 * time.Second), Value: 98, Outcome: "inconclusive"}}}
	svg := string(Chart{Points: []Point{{At: t0, Value: 1, Outcome: "<script>x</script>"}}}.SVG())
	if strings.Contains(svg, "<script>") {
		t.Errorf("a point's outcome is written unescaped: %s", svg)
	}
	svg = string(c.SVG())
	for _, want := range []string{`data-points="4"`, `class="m m-pass"`, `class="m m-fail"`, `class="m m-error"`, `class="m m-inconclusive"`,
		`class="threshold min"`, `class="decisive"`, `min 99`, `<desc`, `1 fail`} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %s", want)
		}
	}
	if strings.Contains(svg, "NaN") {
		t.Error("chart has a NaN coordinate")
	}
	if got := string(Chart{Title: "x"}.SVG()); !strings.Contains(got, "no measurements yet") {
		t.Errorf("empty chart = %s", got)
	}
	if got := string(Chart{Title: "x", Points: []Point{{At: t0, Value: 5, Outcome: "pass"}}}.SVG()); strings.Contains(got, "NaN") || strings.Contains(got, "Inf") {
		t.Errorf("single-point chart = %s", got)
	}
	bar := string(TimingBar([]Phase{{"decide", 100 * time.Millisecond}, {"push", 300 * time.Millisecond}}))
	if !strings.Contains(bar, `width="160.0"`) || !strings.Contains(bar, `width="480.0"`) {
		t.Errorf("timing bar shares wrong: %s", bar)
	}
}

func TestTemplatesParseAndAssetsAreServed(t *testing.T) {
	t.Parallel()
	if _, err := Load(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app.css", "app.js"} {
		u := Asset(name)
		rec := httptest.NewRecorder()
		Static().ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != 200 || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || rec.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q", u, rec.Code, rec.Header().Get("Cache-Control"))
		}
	}
	req := httptest.NewRequest("GET", Asset("app.js"), nil)
	req.Header.Set("If-None-Match", assets["app.js"].etag)
	rec := httptest.NewRecorder()
	Static().ServeHTTP(rec, req)
	if rec.Code != 304 || rec.Body.Len() != 0 {
		t.Errorf("a cached asset: %d with %d bytes, want 304 and none", rec.Code, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	Static().ServeHTTP(rec, httptest.NewRequest("GET", "/ui/static/x/../../web.go", nil))
	if rec.Code != 404 {
		t.Errorf("a path outside the assets: %d", rec.Code)
	}
}

// The pages' Content-Security-Policy allows no inline script or style:
// the templates must have none.
func TestTemplatesHaveNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, name := range names {
		b, _ := templateFS.ReadFile(name)
		src := string(b)
		for _, bad := range []string{"<script>", " style=", "<style", " onclick=", " onload=", "javascript:"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s has %q, which the CSP refuses", name, bad)
			}
		}
	}
}
