package main

import (
	"net"
	"sync"
)

// perAddressListener accepts at most max open connections from one remote
// address; past that, a new one is closed at once. Connections a client
// opens and leaves idle then cost the engine only that client's share,
// and /healthz (a kubelet's probe, from its own address) is still reached.
type perAddressListener struct {
	net.Listener
	max int
	mu  sync.Mutex
	n   map[string]int
}

func limitPerAddress(ln net.Listener, max int) net.Listener {
	return &perAddressListener{Listener: ln, max: max, n: map[string]int{}}
}

func (l *perAddressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(c.RemoteAddr().String())
		if err != nil {
			host = c.RemoteAddr().String()
		}
		l.mu.Lock()
		if l.n[host] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.n[host]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(host) }}, nil
	}
}

func (l *perAddressListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[host]--; l.n[host] <= 0 {
		delete(l.n, host)
	}
}

// countedConn gives its address's place back once, when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
