package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/slipwayci/slipway/stages/relay"
)

// A sandbox runs in a network namespace of its own, holding only a loopback
// interface: the engine's loopback services (its API, etcd, Argo CD, the
// database) are not there. For each registry on this machine the build
// needs, the engine listens on that address *inside* the namespace (a
// socket belongs to the namespace it was made in) and forwards each
// connection to the registry. Nothing else is reachable.

// forwarder relays connections made inside a sandbox's network namespace
// to registries on this machine.
type forwarder struct {
	listeners []net.Listener
}

// forward listens in the network namespace of pid on each of addrs
// (host:port on loopback) and relays to the same address here.
func forward(ctx context.Context, pid int, addrs []string) (*forwarder, error) {
	f := &forwarder{}
	for _, addr := range addrs {
		ln, err := listenIn(pid, addr)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("forwarding registry %s into the sandbox: %w", addr, err)
		}
		f.listeners = append(f.listeners, ln)
		go relay.Serve(ctx, ln, addr)
	}
	return f, nil
}

// listenIn makes a listener inside the network namespace of pid, from an
// OS thread that enters the namespace and is thrown away afterwards.
func listenIn(pid int, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		ns, err := os.Open(filepath.Join("/proc", fmt.Sprint(pid), "ns", "net"))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("entering the sandbox's network namespace: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		done <- result{ln, err}
	}()
	r := <-done
	return r.ln, r.err
}

// Close stops listening; connections in flight end with the sandbox.
func (f *forwarder) Close() {
	for _, ln := range f.listeners {
		ln.Close()
	}
}

// LoopbackRegistries lists the registries on this machine (127.0.0.1,
// localhost, [::1]) that image references name, each once: what Command
// forwards into a sandbox's network.
func LoopbackRegistries(refs ...string) []string {
	var out []string
	for _, ref := range refs {
		host, _, _ := strings.Cut(ref, "/")
		h, port, err := net.SplitHostPort(host)
		if err != nil || port == "" {
			continue
		}
		if h == "localhost" {
			h = "127.0.0.1"
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			if a := net.JoinHostPort(h, port); !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}
