package eventually

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if err := Within(5*time.Second, func() bool { return n.Load() == 3 }); err != nil {
		t.Errorf("a condition another goroutine brings about: %v", err)
	}
	if err := Within(20*time.Millisecond, func() bool { return false }); err == nil || err.Error() != "not reached within 20ms" {
		t.Errorf("a condition that never holds: %v", err)
	}
}
