package engineconfig

import (
	"time"

	"github.com/slipwayci/slipway/pipeline"
)

// WebhookConfig bounds webhook intake.
type WebhookConfig struct {
	MaxBodyBytes int64 `yaml:"maxBodyBytes"` // default 25 MiB
	// ReconcileEvery, when set, is how often the engine lists each watched
	// repository's heads to find pushes whose deliveries it missed (and
	// once at start); 0 lists none.
	ReconcileEvery pipeline.Duration `yaml:"reconcileEvery"`
}

// Bounds of webhooks.reconcileEvery: a forge is not to be polled
// hard, and a missed push not to wait a day.
const (
	MinReconcileEvery = 30 * time.Second
	MaxReconcileEvery = 24 * time.Hour
)

// DefaultMaxBodyBytes is the largest webhook body accepted by default
// (GitHub caps its own at 25 MB).
const DefaultMaxBodyBytes = 25 << 20
