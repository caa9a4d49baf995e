package procs

import (
	"net"
	"strconv"
	"testing"
)

// Reserved ports are distinct, outside the ephemeral range and the
// NodePort range, and free.
func TestFreePortReservesDistinctPorts(t *testing.T) {
	low, high := reservedRange()
	if high >= 30000 {
		t.Errorf("reserved range %d-%d reaches the NodePort range (30000-32767)", low, high)
	}
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p < low || p > high {
			t.Fatalf("port %d: seen before %v, range %d-%d", p, seen[p], low, high)
		}
		seen[p] = true
	}
	for p := range seen {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("reserved port %d is not free: %v", p, err)
			continue
		}
		ln.Close()
	}
}
