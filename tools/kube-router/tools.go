//go:build tools

// Package tools pins kube-router for scripts/tools.sh: the local node's
// NetworkPolicy agent (its firewall only), with the dependencies its
// release pins raised past their known vulnerabilities.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
