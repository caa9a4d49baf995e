package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/web"
)

// gzipped is the size of b compressed as a server would send it.
func gzipped(b []byte) int {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	w.Write(b)
	w.Close()
	return buf.Len()
}

// benchPage times GET path (the whole request: store reads, render) and
// reports the page's weight with its script and stylesheet, gzipped.
func benchPage(b *testing.B, a *apiTest, path string) {
	get := func(p string) []byte {
		req, _ := http.NewRequest("GET", a.url+p, nil)
		req.Header.Set("Authorization", "Bearer view-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		return body
	}
	page := get(path)
	weight := gzipped(page) + gzipped(get(web.Asset("app.js"))) + gzipped(get(web.Asset("app.css")))
	b.ResetTimer()
	for b.Loop() {
		get(path)
	}
	b.ReportMetric(float64(len(page)), "html-bytes")
	b.ReportMetric(float64(weight), "gzip-bytes-with-assets")
}

// The release page of a release with 1,000 measurements.
func BenchmarkReleasePage1000Measurements(b *testing.B) {
	a := newAPI(b)
	run := a.inFlight(b)
	a.seedRelease(b, run, "progressing")
	t0 := time.Now().Add(-time.Hour)
	for i := range 1000 {
		m := &store.Measurement{RunID: run, Step: i / 250, Weight: 10, Metric: []string{"success-rate", "latency-p99"}[i%2], Query: "q",
			Value: 99 + float64(i%7)/10, Min: ptr(99), Requests: 40, Outcome: "pass", At: t0.Add(time.Duration(i) * time.Second)}
		if err := a.st.AddMeasurement(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	benchPage(b, a, fmt.Sprintf("/releases/%d", run))
}

// The run page of a run whose log has 100,000 lines: it shows the last 500.
func BenchmarkRunPage100kLogLines(b *testing.B) {
	a := newAPI(b)
	run := a.inFlight(b)
	lines := make([]store.LogLine, 0, 1000)
	for i := range 100_000 {
		lines = append(lines, store.LogLine{RunID: run, Stage: "build", Attempt: 1, Time: time.Now(), Text: fmt.Sprintf("step %d: %s", i, strings.Repeat("x", 60))})
		if len(lines) == cap(lines) {
			if err := a.st.AppendLogs(context.Background(), lines); err != nil {
				b.Fatal(err)
			}
			lines = lines[:0]
		}
	}
	benchPage(b, a, fmt.Sprintf("/runs/%d", run))
}

// The server's memory per open live stream: 200 sessions each holding
// one stream to a run page, measured as heap in use after GC.
func BenchmarkEventStreamMemory(b *testing.B) {
	a := newAPI(b)
	run := a.inFlight(b)
	const streams = 200
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var bodies []io.Closer
		for range streams {
			sess := a.srv.Guard().Sessions().Start("viewer", time.Now())
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/ui/events?run=%d", a.url, run), nil)
			req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: sess.ID})
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("opening a stream: %v %v", err, resp)
			}
			buf := make([]byte, 64)
			resp.Body.Read(buf) // the retry hint: the stream is running
			bodies = append(bodies, resp.Body)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/streams, "heap-bytes/stream")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/streams, "goroutines/stream")
		for _, c := range bodies {
			c.Close()
		}
	}
}
