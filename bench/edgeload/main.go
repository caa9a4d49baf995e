// Command edgeload measures what a hostile edge costs a running `slipway
// serve`: IDLE connections that never send a byte and SLOW webhook posts
// that carry a signature header and trickle their bodies (one byte every
// 100 ms), spread over loopback addresses 127.0.0.2 and up as many
// senders would be; meanwhile it sends N signed GitHub push deliveries one
// at a time from 127.0.0.1 and asks /healthz after each. It reports the
// deliveries' and /healthz's answers and latency (p50/p99/max), how many
// of the hostile connections the engine kept, and the engine's resident
// memory (VmRSS before and after, VmHWM its peak) from /proc. Loopback
// only; see bench/intake.sh.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "engine URL (loopback)")
	pid := flag.Int("pid", 0, "the engine's process ID, to read its memory")
	idle := flag.Int("idle", 2000, "idle connections")
	slow := flag.Int("slow", 64, "slow signed-looking posts")
	n := flag.Int("n", 200, "signed deliveries")
	secret := flag.String("secret", "bench-secret", "the repository's webhook secret")
	repo := flag.String("repo", "https://github.com/bench/web.git", "the repository's URL")
	flag.Parse()
	if err := run(*server, *pid, *idle, *slow, *n, *secret, *repo); err != nil {
		fmt.Fprintln(os.Stderr, "edgeload:", err)
		os.Exit(1)
	}
}

// hostAddresses is how many loopback addresses the hostile connections
// come from (127.0.0.2 …): an engine limits each address, and strangers
// have many.
const hostAddresses = 32

func run(server string, pid, idle, slow, n int, secret, repo string) error {
	u, err := url.Parse(server)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("-server %q: 127.0.0.1 only (the hostile connections come from the rest of 127.0.0.0/8)", server)
	}
	before, err := memory(pid)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var open, closed atomic.Int64
	var wg sync.WaitGroup
	for i := range idle + slow {
		from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%hostAddresses))}
		wg.Go(func() { hold(u.Host, from, i >= idle, stop, &open, &closed) })
	}
	time.Sleep(2 * time.Second) // the connections are made and the slow posts under way
	client := &http.Client{Timeout: 60 * time.Second}
	var deliveries, health []time.Duration
	answers := map[string]int{}
	for i := range n {
		took, status, err := deliver(client, server, secret, repo, i)
		deliveries = append(deliveries, took)
		answers[answerOf(status, err)]++
		start := time.Now()
		resp, err := client.Get(server + "/healthz")
		health = append(health, time.Since(start))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				answers[fmt.Sprintf("healthz %d", resp.StatusCode)]++
			}
		} else {
			answers["healthz failed"]++
		}
	}
	after, err := memory(pid)
	if err != nil {
		return err
	}
	fmt.Printf("hostile: %d idle connections and %d slow posts from %d addresses: %d still open after the deliveries, %d closed by the engine\n",
		idle, slow, hostAddresses, open.Load(), closed.Load())
	fmt.Printf("deliveries: %d signed, one at a time: answers %v; latency %s\n", n, answers, percentiles(deliveries))
	fmt.Printf("healthz: latency %s\n", percentiles(health))
	fmt.Printf("engine memory: VmRSS %s before, %s after; VmHWM %s\n", before.rss, after.rss, after.hwm)
	close(stop)
	wg.Wait()
	return nil
}

// hold connects from from and keeps the connection until stop, sending
// nothing (idle) or a webhook post's head and then a byte every 100 ms;
// open counts it while it is open, closed once the engine closed it.
func hold(host string, from *net.TCPAddr, slow bool, stop chan struct{}, open, closed *atomic.Int64) {
	d := net.Dialer{LocalAddr: from, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", host)
	if err != nil {
		closed.Add(1)
		return
	}
	defer c.Close()
	open.Add(1)
	if slow {
		fmt.Fprintf(c, "POST /hooks/github HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"+
			"X-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: 1048576\r\n\r\n", host, strings.Repeat("0", 64))
	}
	gone := make(chan struct{})
	go func() { // a connection the engine closes reads EOF (after its answer)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				close(gone)
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-gone:
			open.Add(-1)
			closed.Add(1)
			return
		case <-tick.C:
			if slow {
				c.Write([]byte("{")) // an error shows as the read's
			}
		}
	}
}

// deliver sends delivery i, signed, and returns how long the answer took.
func deliver(client *http.Client, server, secret, repo string, i int) (time.Duration, int, error) {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": fmt.Sprintf("%040x", i), "after": fmt.Sprintf("%040x", i+1),
		"repository": map[string]any{"clone_url": repo}, "pusher": map[string]any{"name": "bench"},
		"commits": []any{map[string]any{"added": []string{}, "removed": []string{}, "modified": []string{"README"}}},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, server+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("edge-%d-%d", time.Now().UnixNano(), i))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := client.Do(req)
	took := time.Since(start)
	if err != nil {
		return took, 0, err
	}
	resp.Body.Close()
	return took, resp.StatusCode, nil
}

func answerOf(status int, err error) string {
	if err != nil {
		return "failed"
	}
	return fmt.Sprint(status)
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s, p99 %s, max %s", at(0.50), at(0.99), s[len(s)-1].Round(10*time.Microsecond))
}

type mem struct{ rss, hwm string }

// memory reads the engine's VmRSS and VmHWM (none without -pid).
func memory(pid int) (mem, error) {
	if pid == 0 {
		return mem{"?", "?"}, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return mem{}, fmt.Errorf("reading the engine's memory: %w", err)
	}
	var m mem
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "VmRSS":
			m.rss = strings.Join(strings.Fields(v), " ")
		case "VmHWM":
			m.hwm = strings.Join(strings.Fields(v), " ")
		}
	}
	return m, nil
}
