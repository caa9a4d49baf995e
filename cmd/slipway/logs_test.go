package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// sseEngine serves a run's log as the engine does, breaking the first
// connection off after two lines; it records each Last-Event-ID.
type sseEngine struct {
	mu      sync.Mutex
	resumes []string
	status  int // when set, every request gets it
}

func (e *sseEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.resumes = append(e.resumes, r.Header.Get("Last-Event-ID"))
	n, status := len(e.resumes), e.status
	e.mu.Unlock()
	if status != 0 {
		http.Error(w, `{"error":"no such run"}`, status)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	from := 1
	if n > 1 {
		fmt.Sscan(r.Header.Get("Last-Event-ID"), &from)
		from++
	}
	for seq := from; seq <= 4; seq++ {
		fmt.Fprintf(w, "id: %d\nevent: log\ndata: {\"seq\":%d,\"stage\":\"a\",\"attempt\":1,\"text\":\"line %d\"}\n\n", seq, seq, seq)
		if n == 1 && seq == 2 {
			return // the connection breaks off
		}
	}
	fmt.Fprint(w, "event: end\ndata: {\"status\":\"succeeded\"}\n\n")
}

func TestFollowReconnectsWithLastEventID(t *testing.T) {
	t.Parallel()
	e := &sseEngine{}
	srv := httptest.NewServer(e)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := &client{base: u, http: srv.Client()}
	var got []string
	var notes bytes.Buffer
	status, err := followLogs(context.Background(), c, "7", func(l store.LogLine) error {
		got = append(got, l.Text)
		return nil
	}, &notes)
	if err != nil || status != "succeeded" {
		t.Fatalf("follow: %q, %v", status, err)
	}
	if strings.Join(got, ",") != "line 1,line 2,line 3,line 4" {
		t.Errorf("lines %q: each once, in order", got)
	}
	if len(e.resumes) != 2 || e.resumes[0] != "" || e.resumes[1] != "2" {
		t.Errorf("Last-Event-ID of each connection: %q", e.resumes)
	}
	if !strings.Contains(notes.String(), "reconnecting in 500ms after line 2") || !strings.Contains(notes.String(), "run 7 succeeded") {
		t.Errorf("notes:\n%s", notes.String())
	}
}

func TestFollowGivesUpOnARefusal(t *testing.T) {
	t.Parallel()
	e := &sseEngine{status: http.StatusNotFound}
	srv := httptest.NewServer(e)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	_, err := followLogs(context.Background(), &client{base: u, http: srv.Client()}, "7", func(store.LogLine) error { return nil }, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "404") || len(e.resumes) != 1 {
		t.Errorf("a 404 is final, not retried: %v after %d requests", err, len(e.resumes))
	}
}

// A log line is what pushed code printed: by default its terminal escapes
// and other control characters are shown escaped, in the text and in the
// stage name; --raw prints them as they are.
func TestLogLinesEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	hostile := store.LogLine{Stage: "b\x1b[2Juild", Attempt: 1, Time: time.Unix(0, 0),
		Text: "ok\x1b]0;pwned\x07 \x1b[1A\rDEPLOYED\ttabbed \u009b31m"}
	var out bytes.Buffer
	if err := newLogPrinter(&out).line(hostile); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\r\u009b") {
		t.Errorf("control characters reached the terminal: %q", got)
	}
	for _, want := range []string{`b\x1b[2Juild#1`, `ok\x1b]0;pwned\x07 \x1b[1A\x0dDEPLOYED` + "\ttabbed " + `\x9b31m`} {
		if !strings.Contains(got, want) {
			t.Errorf("printed %q, want it to hold %q", got, want)
		}
	}
	out.Reset()
	raw := newLogPrinter(&out)
	raw.raw = true
	if err := raw.line(hostile); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), hostile.Text) {
		t.Errorf("--raw printed %q, want the text as it is", out.String())
	}
}
