package triggers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// bodySlots are the places of the bodies being read before they are
// verified: a bounded number, so that strangers cannot make the engine
// read (and spool) without end. Two rules keep a forge's delivery from
// being turned away while strangers hold them:
//   - once a quarter of them or fewer are free, an address that holds half
//     of them gets no more (a forge's burst from one address has them all
//     while they last);
//   - when they are all taken, a newcomer takes the place of the slowest
//     body older than evictAfter that has arrived below forgeRate so far,
//     which is cut off at once: a forge sends a delivery in one go, so
//     what trickles in is a stranger's, however many addresses it comes
//     from. Only when every body is young or arriving fast is the newcomer
//     told to come back.
type bodySlots struct {
	mu         sync.Mutex
	total      int
	reading    map[*bodyRead]struct{}
	byAddr     map[string]int
	evictAfter time.Duration
}

// forgeRate is the pace, in bytes per second, below which a body being
// read may lose its place to a newcomer: a forge's delivery arrives at
// many times it.
const forgeRate = 64 << 10

// DefaultEvictAfter is how long a body keeps its place, whatever its pace.
const DefaultEvictAfter = 250 * time.Millisecond

func newBodySlots(total int, evictAfter time.Duration) *bodySlots {
	return &bodySlots{total: total, reading: map[*bodyRead]struct{}{}, byAddr: map[string]int{}, evictAfter: evictAfter}
}

// bodyRead is one body being read: its sender, how far it has come, and
// how to cut it off.
type bodyRead struct {
	addr    string
	start   time.Time
	read    atomic.Int64
	evicted atomic.Bool
	rc      *http.ResponseController
}

// cut makes the body's reads fail: the flag for the next read, the
// deadline for one that waits now.
func (b *bodyRead) cut() {
	b.evicted.Store(true)
	if b.rc != nil {
		_ = b.rc.SetReadDeadline(time.Now())
	}
}

// take gives the body of r (answered through rc) a place; why is set when
// there is none: its address holds its share, or every place is held by
// a body that may keep it. A place is given back by put.
func (s *bodySlots) take(r *http.Request, rc *http.ResponseController) (b *bodyRead, why string) {
	addr := remoteHost(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	free := s.total - len(s.reading)
	if free <= s.total/4 && s.byAddr[addr] >= max(1, s.total/2) {
		return nil, "too many webhook bodies being read from your address; retry"
	}
	if free <= 0 {
		slowest := s.slowest(time.Now())
		if slowest == nil {
			return nil, "too many webhook bodies being read; retry"
		}
		slowest.cut()
		s.remove(slowest)
	}
	b = &bodyRead{addr: addr, start: time.Now(), rc: rc}
	s.reading[b] = struct{}{}
	s.byAddr[addr]++
	return b, ""
}

// slowest is the body that may lose its place: older than evictAfter,
// below forgeRate, the slowest of those; nil if none.
func (s *bodySlots) slowest(now time.Time) *bodyRead {
	var out *bodyRead
	outRate := float64(forgeRate)
	for b := range s.reading {
		age := now.Sub(b.start)
		if age < s.evictAfter {
			continue
		}
		if rate := float64(b.read.Load()) / age.Seconds(); rate < outRate {
			out, outRate = b, rate
		}
	}
	return out
}

// put gives b's place back (once, however often it is called).
func (s *bodySlots) put(b *bodyRead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, held := s.reading[b]; held {
		s.remove(b)
	}
}

func (s *bodySlots) remove(b *bodyRead) {
	delete(s.reading, b)
	if s.byAddr[b.addr]--; s.byAddr[b.addr] <= 0 {
		delete(s.byAddr, b.addr)
	}
}

// held is how many places are taken.
func (s *bodySlots) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reading)
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
// past until), and fails once the average rate falls below MinBodyRate,
// or once its place was given to another body (bodySlots).
type pacedBody struct {
	body    io.Reader
	place   *bodyRead
	until   time.Time
	minRate int64
}

// errEvicted is a body's read once its place went to another.
var errEvicted = errors.New("the body arrived too slowly to keep its place while others waited")

func (p *pacedBody) Read(b []byte) (int, error) {
	if p.place.evicted.Load() {
		return 0, errEvicted
	}
	deadline := time.Now().Add(MaxBodyIdle)
	if deadline.After(p.until) {
		deadline = p.until
	}
	if rc := p.place.rc; rc != nil {
		_ = rc.SetReadDeadline(deadline)
		if p.place.evicted.Load() { // cut between the check and the deadline
			_ = rc.SetReadDeadline(time.Now())
		}
	}
	n, err := p.body.Read(b)
	read := p.place.read.Add(int64(n))
	if p.place.evicted.Load() {
		return n, errEvicted
	}
	if elapsed := time.Since(p.place.start); err == nil && elapsed > MinRateAfter && float64(read) < float64(p.minRate)*elapsed.Seconds() {
		return n, fmt.Errorf("the body arrived at %.0f bytes/s, slower than %d", float64(read)/elapsed.Seconds(), p.minRate)
	}
	return n, err
}
