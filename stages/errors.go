package stages

import "errors"

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
