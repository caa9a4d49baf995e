package demoapp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The service does what its behaviour file says: a "bad commit" that sets
// an error rate and a latency really serves 5xx, slowly.
func TestBehaviourFileSetsErrorsAndLatency(t *testing.T) {
	bin, err := Build(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	os.WriteFile(app, bin, 0o755)
	for _, tt := range []struct {
		rate    float64
		latency int
		code    int
	}{{0, 0, 200}, {1, 80, 500}} {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		behaviour := filepath.Join(dir, fmt.Sprintf("b-%v.json", tt.rate))
		os.WriteFile(behaviour, []byte(Behaviour("vX", tt.rate, tt.latency)), 0o644)
		cmd := exec.Command(app)
		cmd.Env = []string{"LISTEN=" + addr, "BEHAVIOUR_FILE=" + behaviour}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		var resp *http.Response
		for range 200 {
			if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("the service did not come up: %v", err)
		}
		began := time.Now()
		resp, err = http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(began); resp.StatusCode != tt.code || took < time.Duration(tt.latency)*time.Millisecond {
			t.Errorf("error rate %v, latency %dms: got %d after %s", tt.rate, tt.latency, resp.StatusCode, took)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
}
