//go:build slipway_fake

package main

import (
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/fake"
)

// testKinds: built with -tags slipway_fake (the integration tests and the
// benchmarks), the binary also runs the scripted fake kind. The shipped
// binary never does: a fake stage would let a pipeline "succeed" by printing.
var testKinds = map[string]stages.Factory{"fake": fake.New(nil)}
