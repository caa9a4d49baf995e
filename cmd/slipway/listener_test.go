package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Connections one address opens and leaves idle take only its share: the
// next from that address is closed at once, and another address (a
// kubelet's probe) still gets /healthz answered.
func TestIdleConnectionsFromOneAddressLeaveRoomForHealthz(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })}
	go srv.Serve(limitPerAddress(ln, 3))
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a fourth idle connection from one address: read %d, %v; want it closed", n, err)
	}

	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	resp, err := other.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz from another address: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz from another address: %d %q", resp.StatusCode, body)
	}
}

// An IPv4 address to listen on, 0.0.0.0 too, is IPv4 only: nothing
// answers on IPv6, where a cluster's NetworkPolicy agent may not look.
func TestAnIPv4AddressListensOnIPv4Only(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{"0.0.0.0:0": "tcp4", "127.0.0.1:8080": "tcp4", "[::]:0": "tcp6", "[::1]:1": "tcp6",
		"localhost:8080": "tcp", ":8080": "tcp", "no port": "tcp"} {
		if got := family(addr); got != want {
			t.Errorf("family(%q) = %s, want %s", addr, got, want)
		}
	}
	ln, err := net.Listen(family("0.0.0.0:0"), "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if c, err := net.DialTimeout("tcp4", "127.0.0.1:"+port, time.Second); err != nil {
		t.Errorf("IPv4: %v", err)
	} else {
		c.Close()
	}
	if c, err := net.DialTimeout("tcp6", "[::1]:"+port, time.Second); err == nil {
		c.Close()
		t.Errorf("listening on 0.0.0.0, [::1]:%s answered", port)
	}
}

// The fence waits while its address answers and returns once it is
// refused; one that never stops answering fails, saying what to check.
func TestFenceWaitsUntilItsAddressIsRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := awaitFence(t.Context(), addr, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "still answers this Pod after 300ms: the build namespace's NetworkPolicies are not in force") {
		t.Errorf("an address that answers: %v", err)
	}
	time.AfterFunc(400*time.Millisecond, func() { ln.Close() }) // the policies arrive
	took, err := awaitFence(t.Context(), addr, 10*time.Second)
	if err != nil || took < 300*time.Millisecond {
		t.Errorf("refused after %s: %v", took, err)
	}
	for _, bad := range []string{"", "api-server", "nohost", "host:"} {
		if code, _, errs := run(t, "fence", "--refused", bad, "--within", "1s"); code == 0 || !strings.Contains(errs, "not HOST:PORT or api-server") {
			t.Errorf("fence --refused %q: exit %d, %s", bad, code, errs)
		}
	}
}
