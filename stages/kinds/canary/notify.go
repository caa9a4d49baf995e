package canary

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/retry"
)

// notifier posts release events to webhooks, in the background: a slow
// or failing receiver is retried and logged, and never holds up the
// release (least of all a rollback).
type notifier struct {
	targets []target
	client  *http.Client
	say     func(string, ...any)
	wg      sync.WaitGroup
	ctx     context.Context // ends when wait gives up on deliveries in flight
	cancel  context.CancelFunc
}

type target struct {
	url, format string
}

// Delivery bounds.
const (
	notifyAttempts = 3
	notifyTimeout  = 5 * time.Second
)

func newNotifier(specs []pipeline.Notify, secrets map[string]string, say func(string, ...any)) *notifier {
	n := &notifier{client: &http.Client{Timeout: notifyTimeout}, say: say}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, s := range specs {
		t := target{url: s.URL, format: s.Format}
		if s.URLSecret != "" {
			t.url = secrets[s.URLSecret]
		}
		n.targets = append(n.targets, t)
	}
	return n
}

// event is a release event's JSON body (the generic format).
func (r *rollout) event(kind, text string) map[string]any {
	return map[string]any{"event": kind, "app": r.run.App, "pipeline": r.run.Pipeline, "run": r.run.ID,
		"image": r.ref, "sourceSha": r.run.Trigger.SHA, "weight": r.cp.Weight, "text": text, "at": time.Now().UTC()}
}

// send delivers ev to every target, in the background.
func (n *notifier) send(ev map[string]any) {
	for i, t := range n.targets {
		body := map[string]any(ev)
		if t.format == "slack" {
			body = map[string]any{"text": fmt.Sprintf("*%s* %s", ev["app"], ev["text"])}
		}
		data, err := json.Marshal(body)
		if err != nil {
			n.say("notification %d: %v", i+1, err)
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.deliver(i+1, t.url, data, ev["event"])
		}()
	}
}

// deliver posts data to url, retried with backoff (1 s, 2 s) up to
// notifyAttempts times, until the notifier gives up on it.
func (n *notifier) deliver(i int, url string, data []byte, event any) {
	b := wait.Backoff{Duration: time.Second, Factor: 2, Steps: notifyAttempts}
	err := retry.Retry(n.ctx, b, notifyAttempts, func(ctx context.Context) error { return n.post(ctx, url, data) }, nil)
	if err != nil {
		n.say("notification %d (%v) not delivered: %v", i, event, err)
	}
}

func (n *notifier) post(ctx context.Context, url string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the receiver answered HTTP %d", resp.StatusCode) // its reason phrase is its own text
	}
	return nil
}

// wait gives deliveries in flight at most d to finish, then stops them
// (a retry waiting its turn stops at once).
func (n *notifier) wait(d time.Duration) {
	defer n.cancel()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		n.say("notifications still in flight after %s; not waiting longer", d)
		n.cancel()
		<-done
	}
}
