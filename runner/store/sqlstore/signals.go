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
// to poll for it: a run queued, a command given, log lines written. On
// PostgreSQL they are NOTIFY messages on one channel, sent in the
// transaction of the change (delivered when it commits) and received by a
// connection of each store that LISTENs; on SQLite, one engine, they are
// delivered in the process once the change committed.

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

// signal sends sig with the transaction's change: on PostgreSQL a NOTIFY,
// delivered to every engine when the transaction commits; on SQLite (one
// engine) it is delivered in this process after the commit.
func (h txn) signal(ctx context.Context, sig store.Signal) error {
	if !h.db.d.numbered {
		*h.pending = append(*h.pending, sig)
		return nil
	}
	return notify(sig).run(h)
}

func parseSignal(payload string) (store.Signal, bool) {
	topic, id, ok := strings.Cut(payload, ":")
	n, err := strconv.ParseInt(id, 10, 64)
	return store.Signal{Topic: topic, ID: n}, ok && err == nil
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
				if sig, ok := parseSignal(n.Payload); ok {
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
