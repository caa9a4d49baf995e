package retry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	b := wait.Backoff{Duration: time.Millisecond, Factor: 2, Cap: 4 * time.Millisecond, Steps: 100}
	calls, waits := 0, []time.Duration{}
	err := Retry(context.Background(), b, 0, func(context.Context) error {
		if calls++; calls < 5 {
			return errors.New("not yet")
		}
		return nil
	}, func(_ error, next time.Duration) { waits = append(waits, next) })
	if err != nil || calls != 5 || !slices.Equal(waits, []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}) {
		t.Errorf("until success: err %v, %d calls, waits %v", err, calls, waits)
	}
	calls = 0
	err = Retry(context.Background(), b, 3, func(context.Context) error { calls++; return fmt.Errorf("try %d", calls) }, nil)
	if err == nil || err.Error() != "try 3" || calls != 3 {
		t.Errorf("with 3 attempts: err %v after %d calls", err, calls)
	}
	// A cancelled context ends the wait between attempts at once, and the
	// error says both what failed and why retrying stopped.
	ctx, cancel := context.WithCancel(context.Background())
	long := wait.Backoff{Duration: time.Hour, Factor: 2, Steps: 3}
	err = Retry(ctx, long, 0, func(context.Context) error { return errors.New("down") }, func(error, time.Duration) { cancel() })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "down") {
		t.Errorf("cancelled during the wait: %v", err)
	}
}
