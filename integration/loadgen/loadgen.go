// Package loadgen sends a steady, bounded stream of requests through the
// mesh proxy: a fixed rate for a fixed duration, then it stops by itself.
package loadgen

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Result counts the answers of a load run.
type Result struct {
	Sent   int
	Codes  map[int]int
	Bodies map[string]int // answer bodies (trimmed), to see which version served
	Errors int
}

// Run sends rate requests per second for d to url with the Host header
// host, never more than rate×d in total, and waits for the answers.
func Run(ctx context.Context, url, host string, rate int, d time.Duration) Result {
	res := Result{Codes: map[int]int{}, Bodies: map[string]int{}}
	total := int(float64(rate) * d.Seconds())
	client := &http.Client{Timeout: 10 * time.Second}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	for i := 0; i < total; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return res
		case <-tick.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			req.Host = host
			req.Header.Set("X-Source-Workload", "loadgen")
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			res.Sent++
			if err != nil {
				res.Errors++
				return
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			res.Codes[resp.StatusCode]++
			res.Bodies[strings.TrimSpace(string(b))]++
		}()
	}
	wg.Wait()
	return res
}

// Steady sends rate requests per second to url (Host host) in rounds of
// ten seconds until stop is called, which waits for the answers.
func Steady(url, host string, rate int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			Run(ctx, url, host, rate, 10*time.Second)
		}
	}()
	return func() { cancel(); wg.Wait() }
}
