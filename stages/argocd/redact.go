package argocd

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
