// Package retry is how the stages wait and try again: Retry over
// wait.Backoff, the one backoff policy of the engine (the runner's stage
// retries use it too), and Sleep, a wait that ends with its context.
package retry

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Sleep waits d, or until ctx ends, and then returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err()
}

// Retry calls f until it succeeds, until it has been called attempts
// times (0: no limit), or until ctx ends, waiting between calls as b says.
// Before each wait, onRetry (when set) hears the error and the wait. Retry
// returns nil or the last error, joined with ctx's error when ctx ended.
func Retry(ctx context.Context, b wait.Backoff, attempts int, f func(context.Context) error, onRetry func(err error, next time.Duration)) error {
	for n := 1; ; n++ {
		err := f(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return errors.Join(err, ctx.Err())
		case attempts > 0 && n >= attempts:
			return err
		}
		next := b.Step()
		if onRetry != nil {
			onRetry(err, next)
		}
		if Sleep(ctx, next) != nil {
			return errors.Join(err, ctx.Err())
		}
	}
}
