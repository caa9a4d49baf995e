package triggers

import (
	"maps"
	"slices"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
)

// The forges the engine config accepts are those whose webhooks the
// intake reads.
func TestConfigForgesAreTheIntakes(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(Forges())), slices.Sorted(slices.Values(engineconfig.Forges)); !slices.Equal(got, want) {
		t.Errorf("the intake's forges %v, the engine config's %v", got, want)
	}
}
