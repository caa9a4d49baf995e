//go:build tools

// Package tools pins the Kaniko executor for scripts/tools.sh to build.
package tools

import _ "github.com/GoogleContainerTools/kaniko/cmd/executor"
