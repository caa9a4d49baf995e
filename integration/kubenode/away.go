package kubenode

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/slipwayci/slipway/stages/relay"
)

// Off the node: what a Pod reaches only through the node's routing, as it
// would reach another machine. On a cluster the API server runs on
// control-plane machines and a cloud's metadata service answers at
// 169.254.169.254; here both are test hosts in a network namespace of
// the node's own ("away"), joined to this host by a veth pair. Traffic to
// them is forwarded, not delivered to the node, as it is on a cluster
// (where some network plugins always let a Pod reach its own node). The away
// namespace routes back to the Pods only: nothing in it leaves the machine.
const (
	awayNS   = "slw-away"
	awayLink = "slwaway0" // this host's end; its peer, awayPeer, is in awayNS
	awayPeer = "slwaway1"
	// AwayGateway is this host's address on the away link.
	AwayGateway = "10.245.0.1"
	// ControlPlane is where Pods reach the API server (the kubernetes
	// Service's endpoint, cluster.Options.Advertise): a relay in the away
	// namespace to the API server on this host's loopback.
	ControlPlane = "10.245.0.2"
	// Metadata is the link-local address of a cloud's metadata service.
	// Only the Pods' traffic is routed to it (a rule for the bridge), so
	// this machine's own metadata service, if it has one, is untouched.
	Metadata = "169.254.169.254"
	// Internet is a host on the internet as the Pods see it (an address
	// of TEST-NET-1, reserved for documentation), routed like Metadata.
	Internet = "192.0.2.10"
	// awayTable is the routing table that rule selects.
	awayTable = "245"
)

// routedAway are the away namespace's addresses outside its link's
// subnet, routed there for the Pods only.
var routedAway = []string{Metadata, Internet}

// setUpAway makes the away namespace, its link and routes, and lets the
// Pods' bridge forward to it (beside the guard, which drops the rest).
func setUpAway() error {
	for _, args := range [][]string{
		{"netns", "add", awayNS},
		{"link", "add", awayLink, "type", "veth", "peer", "name", awayPeer, "netns", awayNS},
		{"addr", "add", AwayGateway + "/24", "dev", awayLink},
		{"link", "set", awayLink, "up"},
		{"-n", awayNS, "addr", "add", ControlPlane + "/24", "dev", awayPeer},
		{"-n", awayNS, "addr", "add", Metadata + "/32", "dev", awayPeer},
		{"-n", awayNS, "addr", "add", Internet + "/32", "dev", awayPeer},
		{"-n", awayNS, "link", "set", "lo", "up"},
		{"-n", awayNS, "link", "set", awayPeer, "up"},
		{"-n", awayNS, "route", "add", PodCIDR, "via", AwayGateway},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	for _, host := range routedAway {
		if err := run("ip", "route", "add", host+"/32", "via", ControlPlane, "dev", awayLink, "table", awayTable); err != nil {
			return err
		}
		if err := run("ip", "rule", "add", "iif", Bridge, "to", host+"/32", "lookup", awayTable); err != nil {
			return err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+awayLink+"/forwarding", []byte("1"), 0o644); err != nil {
		return err
	}
	return run("iptables", awayPass("-I")...)
}

// awayPass is the FORWARD rule, ahead of the guard, that lets Pods
// through to the away namespace.
func awayPass(op string) []string {
	return []string{"-t", "mangle", op, "FORWARD", "-i", Bridge, "-o", awayLink, "-j", "ACCEPT"}
}

// sweepAway removes the away namespace (and with it the link and the
// table's route), its rule and its FORWARD rule.
func sweepAway() {
	for range 10 {
		if run("iptables", awayPass("-D")...) != nil {
			break
		}
	}
	for _, host := range routedAway {
		for range 10 {
			if run("ip", "rule", "del", "iif", Bridge, "to", host+"/32", "lookup", awayTable) != nil {
				break
			}
		}
	}
	run("ip", "route", "flush", "table", awayTable)
	run("ip", "netns", "del", awayNS)
}

// ListenAway listens on addr (an address of the away namespace:
// ControlPlane, Metadata or Internet, with a port) inside that namespace.
func (n *Node) ListenAway(addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	// The socket is made on a thread switched into the namespace and back;
	// a thread that could not come back ends with its goroutine.
	go func() {
		runtime.LockOSThread()
		ln, back, err := listenIn("/run/netns/"+awayNS, addr)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{ln, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, fmt.Errorf("listening on %s in the away namespace: %w", addr, r.err)
	}
	return r.ln, nil
}

// listenIn listens on addr in the network namespace at path, from the
// calling (locked) thread; back says whether the thread is home again.
func listenIn(path, addr string) (ln net.Listener, back bool, err error) {
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer home.Close()
	ns, err := os.Open(path)
	if err != nil {
		return nil, true, err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("entering %s: %w", path, err)
	}
	ln, err = net.Listen("tcp", addr)
	if serr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); serr != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, false, errors.Join(err, fmt.Errorf("leaving %s: %w", path, serr))
	}
	return ln, true, err
}

// ExposeAway makes a loopback service of this machine reachable from the
// Pods at host (ControlPlane, Metadata or Internet) and addr's port, off the node:
// a relay listening in the away namespace. It stops with the node.
func (n *Node) ExposeAway(host, addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	at := net.JoinHostPort(host, port)
	ln, err := n.ListenAway(at)
	if err != nil {
		return "", err
	}
	n.relays = append(n.relays, relay.Start(ln, addr))
	return at, nil
}
