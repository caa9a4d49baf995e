package kubenode

import (
	"fmt"
	"net"

	"github.com/slipwayci/slipway/stages/relay"
)

// OnNode is addr (host:port on loopback) as Pods reach it once exposed:
// the same port on the node's address.
func OnNode(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(Gateway, port)
}

// Expose makes a loopback service of this machine (the git server, the
// registry) reachable from Pods at OnNode(addr): a relay listening on the
// node's bridge address, which nothing off the machine can reach. It
// stops with the node.
func (n *Node) Expose(addr string) (string, error) {
	at := OnNode(addr)
	ln, err := net.Listen("tcp", at)
	if err != nil {
		return "", fmt.Errorf("exposing %s to pods: %w", addr, err)
	}
	n.relays = append(n.relays, relay.Start(ln, addr))
	return at, nil
}
