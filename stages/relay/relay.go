// Package relay relays TCP connections accepted on a listener to another
// address: how the build sandbox reaches the registries on the engine's
// machine, and how the test environment's Pods reach its loopback
// services.
package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// Serve accepts connections on ln until it is closed, and relays each to
// a new connection to addr, both ways, until both ends are done or ctx
// ends. It returns once ln is closed and its connections have ended.
func Serve(ctx context.Context, ln net.Listener, addr string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pipe(ctx, c, addr)
		}()
	}
}

// Start relays ln's connections to addr (Serve) in the background until
// the returned stop, which closes ln, ends the open connections and
// returns once they have.
func Start(ln net.Listener, addr string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		Serve(ctx, ln, addr)
		close(served)
	}()
	return func() {
		cancel()
		ln.Close()
		<-served
	}
}

func pipe(ctx context.Context, c net.Conn, addr string) {
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
			tc.CloseWrite() // the other side sees the end of what was sent
		}
		done <- struct{}{}
	}
	go half(up, c)
	go half(c, up)
	<-done
	<-done
}
