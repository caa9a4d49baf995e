package canary

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/slipwayci/slipway/pipeline"
)

// notifier posts release events to webhooks, in the background: a slow
// or failing receiver is retried and logged, and never holds up the
// release (least of all a rollback).
type notifier struct {
	targets []target
	client  *http.Client
	say     func(string, ...any)
	wg      sync.WaitGroup
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
func (r *release) event(kind, text string) map[string]any {
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

func (n *notifier) deliver(i int, url string, data []byte, event any) {
	wait := time.Second
	var last error
	for attempt := 1; attempt <= notifyAttempts; attempt++ {
		if last = n.post(url, data); last == nil {
			return
		}
		if attempt < notifyAttempts {
			time.Sleep(wait)
			wait *= 2
		}
	}
	n.say("notification %d (%v) not delivered after %d attempts: %v", i, event, notifyAttempts, last)
}

func (n *notifier) post(url string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
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
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// wait gives deliveries in flight at most d to finish.
func (n *notifier) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		n.say("notifications still in flight after %s; not waiting longer", d)
	}
}
