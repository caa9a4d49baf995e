package demoapp

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/internal/eventually"
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
		port, err := procs.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		behaviour := filepath.Join(dir, fmt.Sprintf("b-%v.json", tt.rate))
		os.WriteFile(behaviour, []byte(Behaviour("vX", tt.rate, tt.latency)), 0o644)
		cmd := exec.Command(app)
		cmd.Env = []string{"LISTEN=" + addr, "BEHAVIOUR_FILE=" + behaviour}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		eventually.True(t, 5*time.Second, "the service answering /healthz", func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
		began := time.Now()
		resp, err := http.Get("http://" + addr + "/")
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
