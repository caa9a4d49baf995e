// Command webhookflood measures what strangers cost a running `slipway
// serve`: it sends C concurrent webhook posts of SIZE bytes each, with a
// signature that does not verify, and reports the engine's resident memory
// (VmRSS now and VmHWM, its peak) read from /proc before and after, and
// how the posts were answered. Loopback only; see bench/run.sh.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:8080", "engine URL (loopback)")
	pid := flag.Int("pid", 0, "the engine's process ID, to read its memory")
	c := flag.Int("c", 50, "concurrent posts")
	size := flag.Int("size", 24<<20, "bytes per post")
	flag.Parse()
	if err := run(*server, *pid, *c, *size); err != nil {
		fmt.Fprintln(os.Stderr, "webhookflood:", err)
		os.Exit(1)
	}
}

func run(server string, pid, c, size int) error {
	u, err := url.Parse(server)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") {
		return fmt.Errorf("-server %q: loopback addresses only", server)
	}
	before, err := memory(pid)
	if err != nil {
		return err
	}
	body := bytes.Repeat([]byte("x"), size)
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", server+"/hooks/github", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
			code := 0
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	after, err := memory(pid)
	if err != nil {
		return err
	}
	fmt.Printf("%d unsigned posts of %d MiB in %.1fs, answers %v (0: connection error)\n", c, size>>20, time.Since(start).Seconds(), codes)
	fmt.Printf("engine RSS before %d MiB, after %d MiB, peak %d MiB\n", before["VmRSS"]>>10, after["VmRSS"]>>10, after["VmHWM"]>>10)
	return nil
}

// memory reads VmRSS and VmHWM (KiB) of pid.
func memory(pid int) (map[string]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("reading the engine's memory: %w", err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "VmRSS" || k == "VmHWM") {
			var n int
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &n)
			out[k] = n
		}
	}
	return out, nil
}
