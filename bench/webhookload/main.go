// Command webhookload sends a bounded number of signed GitHub push
// deliveries to running `slipway serve` engines (several: round robin) at
// a fixed concurrency, reports accepted deliveries per second and answer
// latency, and then checks in the engines' database (SQLite in -data, or
// PostgreSQL at -database) that every delivery produced exactly one run
// or one recorded no-match. With the database it also says how many of
// those runs had ended when the last delivery was answered, and waits (up
// to -drain) until every run has ended: the rate at which deliveries are
// taken and their runs executed, sustained. Loopback only; see
// bench/intake.sh.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "engine URLs (loopback), comma-separated: deliveries go round robin")
	secret := flag.String("secret", "", "webhook secret")
	repo := flag.String("repo", "https://github.com/bench/web.git", "repository clone URL in the payloads")
	n := flag.Int("n", 20000, "deliveries to send")
	c := flag.Int("c", 16, "concurrent senders")
	data := flag.String("data", "", "the engine's data directory, to verify runs in its SQLite database")
	database := flag.String("database", "", "the engines' PostgreSQL URL, to verify runs there")
	password := flag.String("password-file", "", "file holding the PostgreSQL password")
	accept := flag.Int("accept", http.StatusAccepted, "the answer every delivery must get")
	drain := flag.Duration("drain", 10*time.Minute, "how long to wait for the runs to end, after the last answer")
	fresh := flag.Bool("new-connections", false, "send each delivery on a new connection, as a forge that keeps none open (by default each sender keeps its connections)")
	flag.Parse()
	open := func(ctx context.Context) (*sqlstore.Store, error) {
		if *database != "" {
			pw, err := os.ReadFile(*password)
			if err != nil {
				return nil, err
			}
			return sqlstore.OpenPostgres(ctx, *database, strings.TrimSpace(string(pw)))
		}
		return sqlstore.OpenSQLite(ctx, filepath.Join(*data, "slipway.db"))
	}
	if *data == "" && *database == "" {
		open = nil
	}
	if err := run(strings.Split(*server, ","), *secret, *repo, *n, *c, *accept, *drain, *fresh, open); err != nil {
		fmt.Fprintln(os.Stderr, "webhookload:", err)
		os.Exit(1)
	}
}

func payload(repo string, i int) []byte {
	changed := "web/page.html" // even deliveries match the pipeline's paths; odd ones do not
	if i%2 == 1 {
		changed = "docs/readme.md"
	}
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": fmt.Sprintf("%040x", i), "after": fmt.Sprintf("%040x", i+1),
		"repository": map[string]any{"clone_url": repo}, "pusher": map[string]any{"name": "bench"},
		"commits": []any{map[string]any{"added": []string{}, "removed": []string{}, "modified": []string{changed}}},
	})
	return b
}

func run(servers []string, secret, repo string, n, c, accept int, drain time.Duration, fresh bool, open func(context.Context) (*sqlstore.Store, error)) error {
	for _, server := range servers {
		u, err := url.Parse(server)
		if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1" && u.Hostname() != "localhost") {
			return fmt.Errorf("-server %q: loopback addresses only", server)
		}
	}
	var st *sqlstore.Store // opened before the load, to count runs the moment it ends
	if open != nil {
		var err error
		if st, err = open(context.Background()); err != nil {
			return err
		}
		defer st.Close()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, DisableKeepAlives: fresh}, Timeout: 30 * time.Second}
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, n)
		codes     = map[int]int{}
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body := payload(repo, i)
				m := hmac.New(sha256.New, []byte(secret))
				m.Write(body)
				req, _ := http.NewRequest("POST", servers[i%len(servers)]+"/hooks/github", bytes.NewReader(body))
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", i))
				req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				code := -1
				if err == nil {
					code = resp.StatusCode
					io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // read to its end: the connection is kept
					resp.Body.Close()
				}
				mu.Lock()
				latencies = append(latencies, d)
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	fmt.Printf("deliveries: %d at concurrency %d in %s\n", n, c, elapsed.Round(time.Millisecond))
	fmt.Printf("answers by status: %v\n", codes)
	fmt.Printf("throughput: %.0f deliveries/s\n", float64(n)/elapsed.Seconds())
	fmt.Printf("latency: p50 %s  p99 %s  max %s\n", pct(0.50), pct(0.99), latencies[len(latencies)-1])
	if codes[accept] != n {
		return fmt.Errorf("%d of %d deliveries were not answered %d", n-codes[accept], n, accept)
	}
	if st == nil {
		return nil
	}
	ctx := context.Background()
	ended, waiting, err := countRuns(ctx, st)
	if err != nil {
		return err
	}
	fmt.Printf("runs when the last delivery was answered: %d ended, %d queued or running\n", ended, waiting)
	if err := verify(ctx, st, n); err != nil {
		return err
	}
	return waitDrained(ctx, st, start, elapsed, drain, n)
}

// countRuns counts the runs that ended and those still to end.
func countRuns(ctx context.Context, st *sqlstore.Store) (ended, waiting int, err error) {
	counts, err := st.CountRuns(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	for status, k := range counts {
		if status.Done() {
			ended += k
		} else {
			waiting += k
		}
	}
	return ended, waiting, nil
}

// waitDrained waits, up to drain after the last answer, until no run is
// queued or running, and reports the rate sustained from the first
// delivery to the last run's end.
func waitDrained(ctx context.Context, st *sqlstore.Store, start time.Time, elapsed, drain time.Duration, n int) error {
	deadline := start.Add(elapsed + drain)
	for {
		ended, waiting, err := countRuns(ctx, st)
		if err != nil {
			return err
		}
		if waiting == 0 {
			total := time.Since(start)
			fmt.Printf("sustained: every run ended %s after the last answer: %.0f deliveries/s with their %d runs executed\n",
				(total - elapsed).Round(time.Millisecond), float64(n)/total.Seconds(), ended)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d runs still queued or running %s after the last answer", waiting, drain)
		}
		time.Sleep(50 * time.Millisecond) // polled, bounded by the deadline
	}
}

// verify checks that every delivery made exactly one run or one recorded no-match.
func verify(ctx context.Context, st *sqlstore.Store, n int) error {
	ds, err := st.ListDeliveries(ctx, store.DeliveryFilter{Limit: n + 1})
	if err != nil {
		return err
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{Limit: n + 1})
	if err != nil {
		return err
	}
	started, noMatch := 0, 0
	for _, d := range ds {
		if d.Status != store.DeliveryProcessed || len(d.Matches) != 1 {
			return fmt.Errorf("delivery %s: status %s with %d matches", d.ID, d.Status, len(d.Matches))
		}
		if d.Matches[0].RunID != 0 {
			started++
		} else if d.Matches[0].Reason != "" {
			noMatch++
		}
	}
	if len(ds) != n || started+noMatch != n || len(runs) != started {
		return fmt.Errorf("%d deliveries stored, %d started a run, %d recorded a no-match, %d runs exist", len(ds), started, noMatch, len(runs))
	}
	fmt.Printf("verified: %d deliveries → %d runs (one each) + %d recorded no-matches; no duplicates\n", n, started, noMatch)
	return nil
}
