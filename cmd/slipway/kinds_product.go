//go:build !slipway_fake

package main

import "github.com/slipwayci/slipway/stages"

// testKinds is empty in the shipped binary (see kinds_fake.go).
var testKinds map[string]stages.Factory
