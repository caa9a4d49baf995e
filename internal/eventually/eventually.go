// Package eventually is the one poll helper of Slipway's tests: wait,
// bounded, for something another goroutine or process brings about,
// instead of sleeping and hoping. Only test files import it.
package eventually

import (
	"fmt"
	"testing"
	"time"
)

// True polls cond until it reports true, and fails t (with what, and
// how long it waited) when timeout passes first. It polls often at first
// and every timeout/500 (5 ms to 200 ms) after.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Within(timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Within polls cond like True and returns an error instead of failing a
// test, for helpers that add what they know to the message.
func Within(timeout time.Duration, cond func() bool) error {
	every := min(max(timeout/500, 5*time.Millisecond), 200*time.Millisecond)
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached within %s", timeout)
		}
		time.Sleep(every)
	}
}
