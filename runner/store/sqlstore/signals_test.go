package sqlstore

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// Signals coalesced into payloads come back out as they went in, each
// once, however many there are.
func TestPayloadsRoundTrip(t *testing.T) {
	t.Parallel()
	sigs := []store.Signal{{Topic: "queued", ID: 7}, {Topic: "logs", ID: 7}, {Topic: "queued", ID: 9}, {Topic: "queued", ID: 7}}
	if got := payloads(sigs); !slices.Equal(got, []string{"queued:7,9;logs:7"}) {
		t.Errorf("payloads = %q", got)
	}
	var many []store.Signal
	for i := range 3000 {
		many = append(many, store.Signal{Topic: "logs", ID: int64(1_000_000_000 + i)}, store.Signal{Topic: "ended", ID: int64(i)})
	}
	ps := payloads(many)
	var back []store.Signal
	for _, p := range ps {
		if len(p) > maxPayload {
			t.Errorf("a payload of %d bytes, more than %d", len(p), maxPayload)
		}
		back = append(back, parseSignals(p)...)
	}
	if len(ps) < 2 || len(back) != len(many) {
		t.Fatalf("%d signals in %d payloads came back as %d", len(many), len(ps), len(back))
	}
	for _, sig := range many {
		if !slices.Contains(back, sig) {
			t.Fatalf("%+v lost", sig)
		}
	}
	// What is not a payload of ours is left out, not guessed at.
	for _, bad := range []string{"", "queued", "queued:x", ":", ":1", "queued:-", strings.Repeat(";", 100)} {
		if got := parseSignals(bad); len(got) != 0 {
			t.Errorf("parseSignals(%q) made %+v", bad, got)
		}
	}
	if got := parseSignals("queued:1,,2;;logs:3"); !slices.Equal(got, []store.Signal{{Topic: "queued", ID: 1}, {Topic: "queued", ID: 2}, {Topic: "logs", ID: 3}}) {
		t.Errorf("parseSignals kept %+v", got)
	}
}

// Many writers committing at once: every change reaches the other
// engine, however the signals were coalesced on the way.
func TestEverySignalArrives(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, open func() (*Store, error)) {
		a, b := writerAndListener(t, open)
		var (
			mu   sync.Mutex
			seen = map[int64]bool{}
			all  = make(chan struct{})
		)
		const writers, each = 8, 25
		defer b.Subscribe(func(s store.Signal) {
			mu.Lock()
			defer mu.Unlock()
			if s.Topic == store.SignalQueued && !seen[s.ID] {
				seen[s.ID] = true
				if len(seen) == writers*each {
					close(all)
				}
			}
		})()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					newRun(t, a, fmt.Sprintf("p%d-%d", w, i), "")
				}
			})
		}
		wg.Wait()
		select {
		case <-all:
		case <-time.After(20 * time.Second):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%d of %d queued runs were signalled", len(seen), writers*each)
		}
	})
}
