//go:build tools

// Package tools pins the Argo CD multi-call binary for scripts/tools.sh.
package tools

import _ "github.com/argoproj/argo-cd/v2/cmd"
