package relay

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A relayed connection carries both directions and each side's end; stop
// closes the listener, ends the connections still open and returns once
// they have.
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
	stop := Start(ln, echo.Addr().String())

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
	held, err := net.Dial("tcp", ln.Addr().String()) // left open: stop ends it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Write([]byte("x")); err != nil { // relayed: the echo side is open
		t.Fatal(err)
	}
	stop()
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener still accepts after stop")
	}
	held.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(held); err != nil && !errors.Is(err, net.ErrClosed) {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("a held connection is still open after stop (read %q)", b)
		}
	}
}
