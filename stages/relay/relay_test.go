package relay

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
)

// A relayed connection carries both directions and each side's end; Serve
// returns once the listener is closed and the connections are done.
func TestServeRelaysBothWaysAndEnds(t *testing.T) {
	t.Parallel()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { Serve(ctx, ln, echo.Addr().String()); close(served) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(bufio.NewReader(c))
	if err != nil || string(got) != "ping\n" {
		t.Fatalf("relayed %q, %v", got, err)
	}
	c.Close()
	held, err := net.Dial("tcp", ln.Addr().String()) // left open: ctx ends it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ln.Close()
	cancel()
	<-served
}
