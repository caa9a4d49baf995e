package kubenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(ctx, c, addr)
			}()
		}
	}()
	n.relays = append(n.relays, func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return at, nil
}

// relay copies between c and a new connection to addr until both ends
// are done or ctx ends.
func relay(ctx context.Context, c net.Conn, addr string) {
	defer c.Close()
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok && (err == nil || errors.Is(err, net.ErrClosed)) {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go half(up, c)
	go half(c, up)
	<-done
	<-done
}
