package triggers

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
)

// refuseRead fails the test if a body is read: a stranger's request must
// be refused on its headers.
type refuseRead struct{ read atomic.Bool }

func (r *refuseRead) Read(p []byte) (int, error) {
	r.read.Store(true)
	return 0, io.EOF
}

// Requests that cannot be authenticated from their headers are refused
// before a byte of their body is read.
func TestUnauthenticatedBodiesAreNotRead(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	for _, tt := range []struct {
		name, forge string
		header      map[string]string
		code        int
	}{
		{"github without a signature", "github", map[string]string{"X-GitHub-Event": "push"}, 401},
		{"gitea without a signature", "gitea", map[string]string{"X-Gitea-Event": "push"}, 401},
		{"gitlab with a wrong token", "gitlab", map[string]string{"X-Gitlab-Token": "nope"}, 401},
		{"gitlab with an empty token", "gitlab", map[string]string{"X-Gitlab-Token": ""}, 401},
	} {
		body := &refuseRead{}
		r := httptest.NewRequest("POST", "/hooks/"+tt.forge, body)
		for k, v := range tt.header {
			r.Header.Set(k, v)
		}
		if code, _, raw := it.sendRequest(t, tt.forge, r); code != tt.code || body.read.Load() {
			t.Errorf("%s: %d %s, body read: %v", tt.name, code, raw, body.read.Load())
		}
	}
	r := delivery{"github", "push", "big", "gh-secret", []byte("{}")}.request()
	r.ContentLength = 1 << 30
	r.Body = io.NopCloser(&refuseRead{})
	if code, _, _ := it.sendRequest(t, "github", r); code != 413 {
		t.Errorf("announced 1 GiB body: %d, want 413 without reading", code)
	}
}

// A signed push replayed under a new delivery ID (the ID is not signed)
// finds the run it started instead of starting the old commit again.
func TestReplayedPushStartsNothingNew(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	push := fixture(t, "github-push.json")
	code, first, raw := it.send(t, delivery{"github", "push", "orig", "gh-secret", push})
	if code != 202 || len(first.Runs) != 1 {
		t.Fatalf("first: %d %s", code, raw)
	}
	code, replay, raw := it.send(t, delivery{"github", "push", "replayed-with-a-new-id", "gh-secret", push})
	if code != 202 || len(replay.Runs) != 1 || replay.Runs[0] != first.Runs[0] || !strings.Contains(raw, "the same push") {
		t.Errorf("replay: %d %s", code, raw)
	}
	if n := it.runCount(t); n != 1 {
		t.Errorf("%d runs after a replay, want 1", n)
	}
}

// GitHub and Gitea let a hook send application/x-www-form-urlencoded with
// the JSON in a payload field; the signature covers the form body.
func TestFormEncodedDeliveries(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	form := []byte("payload=" + url.QueryEscape(string(fixture(t, "github-push.json"))))
	r := delivery{"github", "push", "form-1", "gh-secret", form}.request()
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, a, raw := it.sendRequest(t, "github", r); code != 202 || len(a.Runs) != 1 {
		t.Errorf("form delivery: %d %s", code, raw)
	}
	r = delivery{"github", "push", "form-2", "gh-secret", []byte("nothing=here")}.request()
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, _, raw := it.sendRequest(t, "github", r); code != 400 || !strings.Contains(raw, "without a payload field") {
		t.Errorf("form without payload: %d %s", code, raw)
	}
}

// Only so many bodies are read before they are verified (here a slow body
// keeps its place: WithEvictAfter(time.Hour)); a body trickled slowly is
// cut off at the read timeout; large bodies spill to disk.
func TestIntakeBoundsWhatStrangersCost(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	var err error
	it.in, err = NewIntake(it.in.repos, it.st, nil, WithMaxUnauthenticated(1), WithEvictAfter(time.Hour), WithReadTimeout(300*time.Millisecond), WithSpoolDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(it.in.Handler("github"))
	defer srv.Close()

	// A slow sender holds the only slot …
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 1000\r\n\r\n{")
	waitUntil(t, func() bool { return it.in.bodies.held() == 1 })
	// … so a second stranger is told to come back …
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("{}"))
	req.Header.Set("X-Hub-Signature-256", "sha256=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second unauthenticated body while the slot is held: %d", resp.StatusCode)
	}
	// … and the slow one is cut off at the read timeout, freeing the slot.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	if !bytes.Contains(answer, []byte("400")) {
		t.Errorf("slow body: %q", answer)
	}
	waitUntil(t, func() bool { return it.in.bodies.held() == 0 })

	// A body larger than the in-memory part of the spool is verified from disk.
	big := []byte(`{"pad": "` + strings.Repeat("x", 2*spoolMemory) + `"}`)
	sp := &spool{dir: t.TempDir()}
	sp.Write(big)
	if sp.file == nil || sp.mem.Len() != 0 {
		t.Errorf("a %d-byte body stayed in memory", len(big))
	}
	got, _ := sp.Bytes()
	sp.Close()
	if !bytes.Equal(got, big) {
		t.Error("spooled body differs")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	eventually.True(t, 5*time.Second, "the condition", cond)
}

// One address cannot hold every slot for unverified bodies: its slow
// senders take three quarters of them, the next is told to come back, and
// a forge's signed delivery from another address is still served; a body
// that arrives below the minimum rate is cut off.
func TestSlowSendersFromOneAddressLeaveRoomForTheForge(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	h := it.in.Handler("github")
	slow := func(addr string) (*io.PipeWriter, chan int) {
		pr, pw := io.Pipe()
		r := httptest.NewRequest(http.MethodPost, "/hooks/github", pr)
		r.RemoteAddr = addr
		r.Header.Set("X-GitHub-Event", "push")
		r.Header.Set("X-Hub-Signature-256", "sha256=00")
		code := make(chan int, 1)
		go func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			code <- w.Code
		}()
		return pw, code
	}
	// One address takes slots while more than a quarter are free: three
	// quarters of them.
	perAddr := DefaultMaxUnauthenticated - DefaultMaxUnauthenticated/4
	var held []*io.PipeWriter
	for range perAddr {
		pw, _ := slow("192.0.2.1:4000")
		held = append(held, pw)
	}
	defer func() {
		for _, pw := range held {
			pw.Close()
		}
	}()
	waitUntil(t, func() bool { return it.in.bodies.held() == perAddr })
	pw, code := slow("192.0.2.1:4001")
	defer pw.Close()
	if c := <-code; c != http.StatusServiceUnavailable {
		t.Errorf("a slow sender past its address's share: %d, want 503", c)
	}
	d := delivery{"github", "push", "gh-slots", "gh-secret", fixture(t, "github-push.json")}
	r := d.request()
	r.RemoteAddr = "198.51.100.7:5555"
	if c, a, raw := it.sendRequest(t, "github", r); c != http.StatusAccepted && c != http.StatusOK {
		t.Errorf("the forge's signed delivery while one address holds its share: %d %+v %s", c, a, raw)
	}

	// A body that trickles in below the minimum rate is cut off.
	pr, tw := io.Pipe()
	go func() {
		for range 10 {
			if _, err := tw.Write([]byte("{")); err != nil {
				return
			}
			time.Sleep(400 * time.Millisecond) // the sender's pace, 2.5 bytes/s
		}
		tw.Close()
	}()
	defer tw.Close()
	tr := httptest.NewRequest(http.MethodPost, "/hooks/github", pr)
	tr.RemoteAddr = "203.0.113.9:1"
	tr.Header.Set("X-GitHub-Event", "push")
	tr.Header.Set("X-Hub-Signature-256", "sha256=00")
	if c, _, raw := it.sendRequest(t, "github", tr); c != http.StatusBadRequest {
		t.Errorf("a body at 2.5 bytes/s: %d %s, want 400", c, raw)
	}
}

// Slow senders from as many addresses as there are places take them all;
// a forge's signed delivery then takes the place of the slowest, which is
// cut off at once (its wait for the next byte ends), and is served. A
// place is taken away only from a body that has kept it evictAfter and
// arrives below a forge's pace.
func TestASlowBodyGivesItsPlaceToTheForge(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	var err error
	const places = 4
	it.in, err = NewIntake(it.in.repos, it.st, it.in.runs, WithMaxUnauthenticated(places), WithEvictAfter(0), WithSpoolDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(it.in.Handler("github"))
	defer srv.Close()
	answers := make(chan string, places)
	for i := range places {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		conn, err := d.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100000\r\n\r\n{")
		go func() {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			b, _ := io.ReadAll(conn)
			answers <- string(b)
		}()
	}
	waitUntil(t, func() bool { return it.in.bodies.held() == places })
	d := delivery{"github", "push", "gh-evicts", "gh-secret", fixture(t, "github-push.json")}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(d.body))
	req.Header = d.request().Header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Errorf("the forge's delivery while slow senders held every place: %d %s", resp.StatusCode, raw)
	}
	select {
	case a := <-answers:
		if !strings.Contains(a, "400") {
			t.Errorf("the evicted sender was answered %q", a)
		}
	case <-time.After(10 * time.Second):
		t.Error("no slow sender was cut off")
	}
	if n := it.in.bodies.held(); n != places-1 {
		t.Errorf("%d places held after the eviction and the delivery, want %d", n, places-1)
	}

	// Young bodies, or bodies arriving at a forge's pace, keep their places.
	s := newBodySlots(1, time.Hour)
	r, other := httptest.NewRequest(http.MethodPost, "/", nil), httptest.NewRequest(http.MethodPost, "/", nil)
	other.RemoteAddr = "198.51.100.7:5555"
	first, _ := s.take(r, nil)
	if _, why := s.take(other, nil); why != "too many webhook bodies being read; retry" || first.evicted.Load() {
		t.Errorf("a young body lost its place: %q", why)
	}
	s = newBodySlots(1, 0)
	fast, _ := s.take(r, nil)
	fast.read.Store(1 << 30)
	if _, why := s.take(other, nil); why == "" || fast.evicted.Load() {
		t.Errorf("a body arriving at a forge's pace lost its place: %q", why)
	}
}
