package integration

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/benchreport"
	"github.com/slipwayci/slipway/runner/store"
)

// probe sends requests through the mesh at a fixed rate and remembers when
// each request that the bad version answered was sent.
type probe struct {
	mu  sync.Mutex
	bad []time.Time
}

func (p *probe) run(ctx context.Context, proxy, marker string, every time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wg.Add(1)
		go func(sent time.Time) {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+proxy+"/", nil)
			req.Host = "order-service.shop"
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if strings.Contains(string(b), marker) {
				p.mu.Lock()
				p.bad = append(p.bad, sent)
				p.mu.Unlock()
			}
		}(time.Now())
	}
}

// window is the first and the last request the bad version answered.
func (p *probe) window() (first, last time.Time, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.bad {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return first, last, len(p.bad)
}

// BenchmarkTimeToRollback measures, on the local environment (1 s
// scrape interval, 100 probe requests/s; a fixed threshold with a 2 s
// interval, and the comparison with the stable with 10 s and 1 min
// intervals — where the time must not grow with the interval), the time
// from the first request a bad canary served to the last one — after
// which all traffic is on stable, as seen through the mesh proxy — over
// 5 releases, and splits it with the rollback record's timings:
// detection (first bad request → the failing measurement), decision,
// git (commit+push), sync (Argo CD until the live route shows 0%) and
// route flip (live route at 0% → the proxy's last bad answer).
func BenchmarkTimeToRollback(b *testing.B) {
	e := newReleaseEnv(b)
	e.steadyLoad(b, 40)
	bad := pushDemoImage(b, e.reg, "shop/order-service:bad", "bad-version", 1, 0)
	warm := e.canaryPipeline(b, "warm.yaml", canaryOpts{steps: "[10, 50]", interval: "2s"})
	if out, code := e.release(b, warm, bad); code != 1 { // warm-up: leaves the route at 100/0
		b.Fatalf("warm-up release: exit %d\n%s", code, out)
	}
	compare := "[{name: errors-vs-stable, builtin: request-success-rate, compare: stable}]"
	for _, c := range []struct{ name, interval, metrics string }{
		{"threshold-2s", "2s", ""}, // min: 95, checked every scrape
		{"threshold-1m", "1m", ""},
		{"compare-10s", "10s", compare},
		{"compare-1m", "1m", compare},
	} {
		b.Run(c.name, func(b *testing.B) {
			pipe := e.canaryPipeline(b, c.name+".yaml", canaryOpts{steps: "[10, 50]", interval: c.interval, metrics: c.metrics})
			for b.Loop() {
				timeToRollback(b, e, pipe, bad)
			}
		})
	}
}

// timeToRollback releases bad 5 times and reports the phases of its
// rollbacks, p50 and max.
func timeToRollback(b *testing.B, e *releaseEnv, pipe, bad string) {
	phases := map[string][]time.Duration{}
	for i := range 5 {
		p := &probe{}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.run(ctx, e.Proxy.Addr, "order-service failed", 10*time.Millisecond); close(done) }() // only the bad version fails
		out, code := e.release(b, pipe, bad)
		time.Sleep(time.Second) // the probe outlives the run by a second: late bad answers would count
		stop()
		<-done
		if code != 1 {
			b.Fatalf("release %d: exit %d\n%s", i+1, code, out)
		}
		first, last, n := p.window()
		st := openStore(b, filepath.Join(e.dir, "data"))
		rbs, _ := st.ListRollbacks(context.Background(), store.RollbackFilter{Limit: 1})
		st.Close()
		t := rbs[0].Evidence.Timings
		add := func(name string, d time.Duration) { phases[name] = append(phases[name], d) }
		add("total", last.Sub(first))
		add("detection", rbs[0].DetectedAt.Sub(first))
		add("decision", t.DecidedAt.Sub(rbs[0].DetectedAt))
		add("git", t.PushedAt.Sub(t.DecidedAt))
		add("sync", t.RestoredAt.Sub(t.PushedAt))
		add("flip", last.Sub(t.RestoredAt))
		b.Logf("release %d: %d bad answers over %s", i+1, n, last.Sub(first).Round(time.Millisecond))
	}
	benchreport.Phases(b, "time to rollback", phases, "total", "detection", "decision", "git", "sync", "flip")
}
