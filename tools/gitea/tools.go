//go:build tools

// Package tools pins the Gitea server for scripts/tools.sh: the forge the
// local environment pushes to.
package tools

import _ "gitea.dev"
