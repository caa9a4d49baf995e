package stages

import (
	"context"
	"errors"
)

// ErrShutdown is the cause of a stage's context when the engine is going
// away (SIGTERM, a drained one-shot run): the attempt is interrupted and
// resumed at the next start. Any other cancellation — the run was
// cancelled, the stage timed out — is final. A canary rolls back then, but
// not on ErrShutdown: traffic stays where it is until the engine is back.
var ErrShutdown = errors.New("engine shutting down")

// ShuttingDown reports whether ctx ended because the engine is going away.
func ShuttingDown(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrShutdown) }
