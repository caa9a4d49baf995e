package runner

import (
	"context"

	"github.com/slipwayci/slipway/runner/store"
)

// Store is what the runner uses of the engine's store: runs and their
// stages and attempts, the lines and events it writes of them, the
// artifacts stages keep, and the side of a canary release the stage
// carrying it out writes. People's side of a release (listing releases
// and rollbacks, giving commands), deliveries, schedules and the audit
// log are other packages' to use.
type Store interface {
	store.Runs
	store.Stages
	store.ReleaseProgress
	AppendLogs(ctx context.Context, lines []store.LogLine) error
	ReadLogs(ctx context.Context, runID, afterSeq int64, limit int) ([]store.LogLine, error)
	AppendEvent(ctx context.Context, e store.Event) error
	PutArtifact(ctx context.Context, a store.Artifact) error
}
