package stages

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/wait"
)

// retryable marks an error as worth another attempt (a registry that
// answered 503, a timeout talking to a server), as opposed to one that
// will fail the same way again (a missing Dockerfile).
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Retryable marks err as worth retrying. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return retryable{err}
}

// IsRetryable reports whether err, or an error it wraps, was marked Retryable.
func IsRetryable(err error) bool {
	var r retryable
	return errors.As(err, &r)
}

// Redact returns err with every non-empty secret replaced by *** in its
// text, or err itself when it holds none. Stages pass errors from
// libraries (git, gRPC) through it: those may quote a URL or a header with
// a credential. The result unwraps to err, so errors.Is/As and gRPC's
// status.Code still see what went wrong.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

// redacted is an error whose text has secrets removed.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// GRPCStatus lets gRPC's status.FromError/Code read the wrapped status
// (with its message redacted too).
func (e *redacted) GRPCStatus() *status.Status {
	st, ok := status.FromError(e.err)
	if !ok {
		return status.New(codes.Unknown, e.msg)
	}
	return status.New(st.Code(), e.msg)
}

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
// times (0: no limit), or until ctx ends, waiting between calls as b says
// — wait.Backoff is the one backoff policy of the engine (the runner's
// stage retries use it too). Before each wait, onRetry (when set) hears
// the error and the wait. Retry returns nil or the last error, joined
// with ctx's error when ctx ended.
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
