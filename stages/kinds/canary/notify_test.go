package canary

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayci/slipway/pipeline"
)

// A failing receiver is retried; when the release stops waiting for it,
// the delivery's retry stops too — it does not sleep through the end.
func TestNotificationRetriesStopWhenTheReleaseStopsWaiting(t *testing.T) {
	t.Parallel()
	var posts atomic.Int32
	first := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 1 {
			close(first)
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var mu sync.Mutex
	var said []string
	n := newNotifier([]pipeline.Notify{{URL: srv.URL}}, nil, func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		said = append(said, f)
	})
	n.send(map[string]any{"event": "promoted", "app": "shop", "text": "t"})
	<-first
	n.wait(time.Millisecond) // returns only once the delivery has ended
	mu.Lock()
	defer mu.Unlock()
	if got := posts.Load(); got != 1 {
		t.Errorf("%d posts; the first retry waits a second, and waiting stopped before it", got)
	}
	if len(said) != 2 || !strings.Contains(said[1], "not delivered") {
		t.Errorf("said %q", said)
	}
}
