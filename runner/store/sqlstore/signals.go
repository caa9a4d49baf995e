package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipwayci/slipway/runner/store"
)

// Signals tell every engine on the store what changed, so that none has
// to poll for it: a run queued, a command given, log lines written. A
// write's signals go out once it committed. On SQLite, one engine, they
// are delivered in the process. On PostgreSQL they are NOTIFY messages on
// one channel, received by a connection of each store that LISTENs, and
// each costs the server a wake-up of every listener: a store's sender
// coalesces them. While one NOTIFY is on its way the signals committed
// meanwhile gather, and the next carries them all in one payload
// ("queued:7,9;logs:7"). An engine that dies between a commit and its
// NOTIFY leaves the others to notice by their slow polls, as after a lost
// listener connection.

const signalChannel = "slipway"

type hub struct {
	mu   sync.Mutex
	subs map[int]func(store.Signal)
	next int
}

// Subscribe calls fn with every signal until the returned function is
// called. fn must not block: it is called from the store's listener.
func (s *Store) Subscribe(fn func(store.Signal)) (unsubscribe func()) {
	h := &s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[int]func(store.Signal){}
	}
	id := h.next
	h.next++
	h.subs[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

func (h *hub) deliver(sig store.Signal) {
	h.mu.Lock()
	subs := make([]func(store.Signal), 0, len(h.subs))
	for _, fn := range h.subs {
		subs = append(subs, fn)
	}
	h.mu.Unlock()
	for _, fn := range subs {
		fn(sig)
	}
}

// signal sends sig once the transaction committed.
func (h txn) signal(_ context.Context, sig store.Signal) error {
	*h.pending = append(*h.pending, sig)
	return nil
}

// sender is a store's NOTIFY sender on PostgreSQL: at most one goroutine
// at a time, sending what is pending until nothing is.
type sender struct {
	mu      sync.Mutex
	pending []store.Signal
	busy    bool
	closed  bool           // by Close: what is published after it is not sent
	wg      sync.WaitGroup // the goroutine, waited for by Close
}

// close waits for what is on its way and sends nothing more.
func (o *sender) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wg.Wait()
}

// maxPayload keeps a NOTIFY payload under PostgreSQL's 8,000 bytes.
const maxPayload = 7900

// publish sends the signals of a committed write to every engine.
func (s *Store) publish(sigs ...store.Signal) {
	if len(sigs) == 0 {
		return
	}
	if !s.d.numbered {
		for _, sig := range sigs {
			s.hub.deliver(sig)
		}
		return
	}
	o := &s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.pending = append(o.pending, sigs...)
	if !o.busy {
		o.busy = true
		o.wg.Add(1)
		go s.sendPending()
	}
}

func (s *Store) sendPending() {
	o := &s.out
	defer o.wg.Done()
	for {
		o.mu.Lock()
		sigs := o.pending
		o.pending = nil
		if len(sigs) == 0 {
			o.busy = false
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
		for _, p := range payloads(sigs) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			// Lost on error: the receivers' polls and resyncs repair it.
			s.db.ExecContext(ctx, `SELECT pg_notify(?, ?)`, signalChannel, p)
			cancel()
		}
	}
}

// payloads writes sigs as few NOTIFY payloads as fit: for each topic in
// the order first seen, "topic:id,id", topics joined by ";", each ID
// once.
func payloads(sigs []store.Signal) []string {
	var (
		topics []string
		ids    = map[string][]int64{}
		seen   = map[store.Signal]bool{}
	)
	for _, sig := range sigs {
		if seen[sig] {
			continue
		}
		seen[sig] = true
		if ids[sig.Topic] == nil {
			topics = append(topics, sig.Topic)
		}
		ids[sig.Topic] = append(ids[sig.Topic], sig.ID)
	}
	var (
		out []string
		b   strings.Builder
	)
	for _, t := range topics {
		open := false // b holds "t:" already
		for _, id := range ids[t] {
			n := strconv.FormatInt(id, 10)
			if b.Len()+len(t)+len(n)+2 > maxPayload {
				out = append(out, b.String())
				b.Reset()
				open = false
			}
			switch {
			case open:
				b.WriteByte(',')
			case b.Len() > 0:
				b.WriteByte(';')
			}
			if !open {
				b.WriteString(t + ":")
				open = true
			}
			b.WriteString(n)
		}
	}
	return append(out, b.String())
}

// parseSignals reads a payload written by payloads; what it cannot read
// (an engine of another version, say) it leaves out.
func parseSignals(payload string) []store.Signal {
	var out []store.Signal
	for _, part := range strings.Split(payload, ";") {
		topic, list, ok := strings.Cut(part, ":")
		if !ok || topic == "" {
			continue
		}
		for _, id := range strings.Split(list, ",") {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				out = append(out, store.Signal{Topic: topic, ID: n})
			}
		}
	}
	return out
}

// listen receives the signals of every engine on a PostgreSQL database
// until ctx ends, reconnecting after a lost connection. After a
// reconnection it delivers store.SignalResync: what was sent while it was
// away is lost, and subscribers should look again.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig, ready chan<- error) {
	for first := true; ctx.Err() == nil; first = false {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+signalChannel)
		}
		if first {
			ready <- err
		}
		if err == nil {
			if !first {
				s.hub.deliver(store.Signal{Topic: store.SignalResync})
			}
			for {
				n, werr := conn.WaitForNotification(ctx)
				if werr != nil {
					err = werr
					break
				}
				for _, sig := range parseSignals(n.Payload) {
					s.hub.deliver(sig)
				}
			}
		}
		if conn != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		// subscribers poll slowly besides: a lost connection delays, and
		// the resync after it repairs
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
