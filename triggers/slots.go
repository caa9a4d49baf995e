package triggers

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// addrSlots bounds how many unverified bodies one remote address has
// read at once once the intake's slots run short, so one sender cannot
// hold every slot: while a quarter of them or fewer are free, an address
// that holds half of them gets no more. A forge's burst from one address
// (GitHub sends from a few) has them all while they last.
type addrSlots struct {
	mu    sync.Mutex
	total int
	n     map[string]int
}

// take reserves a slot for the sender of r, free being the intake's free
// slots; false when its address holds all it may. A taken slot is given
// back by put.
func (s *addrSlots) take(r *http.Request, free int) (string, bool) {
	addr := remoteHost(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if free <= s.total/4 && s.n[addr] >= max(1, s.total/2) {
		return addr, false
	}
	s.n[addr]++
	return addr, true
}

func (s *addrSlots) put(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[addr]--; s.n[addr] <= 0 {
		delete(s.n, addr)
	}
}

// remoteHost is the address r came from, without its port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// What a sender of an unverified body must keep up: some bytes at least
// every MaxBodyIdle, and MinBodyRate on average once MinRateAfter passed.
// A forge sends a delivery at once; a body trickled in holds a slot.
const (
	MaxBodyIdle  = 5 * time.Second
	MinBodyRate  = 1 << 10 // bytes per second
	MinRateAfter = 2 * time.Second
)

// pacedBody reads a request body that must arrive at a minimum pace: each
// read moves the connection's read deadline to MaxBodyIdle from now (never
// past until), and fails once the average rate falls below MinBodyRate.
type pacedBody struct {
	body    io.Reader
	rc      *http.ResponseController
	start   time.Time
	until   time.Time
	read    int64
	minRate int64
}

func (p *pacedBody) Read(b []byte) (int, error) {
	deadline := time.Now().Add(MaxBodyIdle)
	if deadline.After(p.until) {
		deadline = p.until
	}
	_ = p.rc.SetReadDeadline(deadline)
	n, err := p.body.Read(b)
	p.read += int64(n)
	if elapsed := time.Since(p.start); err == nil && elapsed > MinRateAfter && float64(p.read) < float64(p.minRate)*elapsed.Seconds() {
		return n, fmt.Errorf("the body arrived at %.0f bytes/s, slower than %d", float64(p.read)/elapsed.Seconds(), p.minRate)
	}
	return n, err
}
