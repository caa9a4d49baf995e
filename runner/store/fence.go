package store

import (
	"context"
	"errors"
)

// Engines sharing a store fence their writes. Every claim and takeover of
// a run raises its epoch (Run.Epoch), the fencing token of the lease it
// makes; an engine writes what it does for a run under the epoch it
// claimed the run at (WithFence), and the store refuses such a write once
// the run's epoch has moved on. An engine paused past its lease (SIGSTOP,
// a long pause, a partition) and then woken cannot write over the engine
// that took its run over: its first write fails with ErrFenced, and its
// Fence's Stale hears of it.

// ErrFenced is what a write made under a stale fence fails with.
var ErrFenced = errors.New("another engine took the run over: this engine's lease on it is stale")

// Fence is the fencing token a run's writes are made under.
type Fence struct {
	Run   int64
	Epoch int64
	// Stale, when set, is called (by the refused write's caller) with the
	// error of each write the store refused under this fence.
	Stale func(error)
}

type fenceKey struct{}

// WithFence makes every store write made with ctx (or a context derived
// from it) one under fence f: written only while run f.Run is at f.Epoch.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx's writes are made under, if any.
func FenceOf(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}
