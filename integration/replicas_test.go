package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipwayci/slipway/internal/eventually"
)

const replicaPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: svc}
on: {push: {branches: [main]}}
stages:
  - {name: test, fake: {log: ["testing"]}}
  - {name: build, fake: {log: ["building"], sleep: 400ms}}
  - {name: deploy, fake: {log: ["deploying"]}}
`

// replicaConfig is the engine config of every replica: the same
// database, a 3-second lease, its own data directory.
func replicaConfig(t *testing.T, dir, dsn string, i int) string {
	return writeFile(t, dir, fmt.Sprintf("replica-%d.yaml", i), fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: data-%d
database: {url: %q, password: {file: pg-password}, leaseTTL: 3s}
repositories:
  - {name: svc, url: "https://github.com/acme/svc.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: svc.yaml}]}
`, i, dsn))
}

// deliver sends a signed GitHub push delivery (as github.com would) and
// returns the engine's answer.
func deliver(url, secret string, i int) (int, error) {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": fmt.Sprintf("%040x", i), "after": fmt.Sprintf("%040x", i+1),
		"repository": map[string]any{"clone_url": "https://github.com/acme/svc.git"}, "pusher": map[string]any{"name": "dev"},
		"commits": []any{map[string]any{"added": []string{}, "removed": []string{}, "modified": []string{"main.go"}}},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest("POST", url+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("delivery-%d", i))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Three engines on one PostgreSQL database share 300 runs started by
// webhooks sent to all three; one engine is killed with SIGKILL mid-run,
// twice (restarted in between). Every delivery makes one run, every run
// ends once and succeeded, every stage succeeded exactly once (a stage
// done before a kill is not run again), and no stage's attempts overlap
// in time: the runs of a killed engine were taken over only after their
// lease ended.
func TestReplicasShareRunsAndSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	srv, dsn := startPostgres(t)
	writeFile(t, dir, "svc.yaml", replicaPipeline)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "pg-password", srv.Password+"\n")
	engines := make([]*engineProc, 3)
	for i := range engines {
		engines[i] = startServe(t, replicaConfig(t, dir, dsn, i))
	}
	conn, err := pgx.Connect(context.Background(), strings.Replace(dsn, "slipway@", "slipway:"+srv.Password+"@", 1))
	must(t, err)
	defer conn.Close(context.Background())
	count := func(q string) int {
		var n int
		must(t, conn.QueryRow(context.Background(), q).Scan(&n))
		return n
	}

	const runs = 300
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		refused []string
		next    = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				mu.Lock()
				url := engines[i%3].url // replica 0 may be between a kill and its restart: its share goes to the others
				mu.Unlock()
				code, err := deliver(url, "s3cret", i)
				if err != nil || code >= 300 {
					code, err = deliver(engines[1+i%2].url, "s3cret", i)
				}
				if err != nil || code >= 300 {
					mu.Lock()
					refused = append(refused, fmt.Sprintf("delivery %d: %d %v", i, code, err))
					mu.Unlock()
				}
			}
		})
	}
	kills := make(chan time.Time, 2)
	go func() {
		defer close(next)
		for i := range runs {
			next <- i
		}
	}()
	for k := range 2 {
		// kill replica 0 while it runs a build, a third and two thirds of the way
		eventually.True(t, 60*time.Second, "replica 0 to be running a build", func() bool {
			return count(`SELECT COUNT(*) FROM runs WHERE status = 'succeeded'`) >= (k+1)*runs/3 && count(`SELECT COUNT(*) FROM runs r JOIN attempts a ON a.run_id = r.id
				WHERE a.status = 'running' AND a.idx = 1 AND r.owner LIKE '%/`+fmt.Sprint(engines[0].cmd.Process.Pid)+`/%'`) > 0
		})
		mu.Lock()
		killed := engines[0]
		mu.Unlock()
		killed.killHard(t)
		kills <- time.Now()
		t.Logf("kill %d: replica 0 (pid %d) killed with %d runs done", k+1, killed.cmd.Process.Pid,
			count(`SELECT COUNT(*) FROM runs WHERE status = 'succeeded'`))
		restarted := startServe(t, replicaConfig(t, dir, dsn, 0))
		mu.Lock()
		engines[0] = restarted
		mu.Unlock()
	}
	wg.Wait()
	if len(refused) > 0 {
		t.Errorf("%d deliveries were refused by two engines: %s", len(refused), refused[0])
	}
	eventually.True(t, 3*time.Minute, "every run to end", func() bool {
		return count(`SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')`) == runs
	})

	if n := count(`SELECT COUNT(*) FROM runs`); n != runs {
		t.Errorf("%d runs for %d deliveries", n, runs)
	}
	if n := count(`SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'`); n != 0 {
		var why string
		conn.QueryRow(context.Background(), `SELECT status || ': ' || reason FROM runs WHERE status <> 'succeeded' LIMIT 1`).Scan(&why)
		t.Errorf("%d runs did not succeed; one: %s", n, why)
	}
	if n := count(`SELECT COUNT(*) FROM (SELECT run_id, idx FROM attempts WHERE status = 'succeeded'
			GROUP BY run_id, idx HAVING COUNT(*) > 1) twice`); n != 0 {
		t.Errorf("%d stages succeeded twice: a stage done before a kill ran again", n)
	}
	if n := count(`SELECT COUNT(*) FROM stages WHERE status <> 'succeeded'`); n != 0 {
		t.Errorf("%d stages did not succeed", n)
	}
	if n := count(`SELECT COUNT(*) FROM attempts a JOIN attempts b ON a.run_id = b.run_id AND a.idx = b.idx AND a.attempt < b.attempt
			WHERE b.started_at < a.finished_at OR a.finished_at = 0`); n != 0 {
		t.Errorf("%d pairs of attempts of one stage overlap in time", n)
	}
	interrupted := count(`SELECT COUNT(*) FROM attempts WHERE status = 'interrupted'`)
	if interrupted < 2 {
		t.Errorf("%d attempts interrupted by the two kills, want at least 2", interrupted)
	}
	// takeover time: from a kill to the interrupted attempt's stage running again
	close(kills)
	for killedAt := range kills {
		var resumedAt int64
		err := conn.QueryRow(context.Background(), `SELECT MIN(b.started_at) FROM attempts a JOIN attempts b
			ON a.run_id = b.run_id AND a.idx = b.idx AND b.attempt = a.attempt + 1
			WHERE a.status = 'interrupted' AND a.finished_at >= $1`, killedAt.UnixMicro()).Scan(&resumedAt)
		if err == nil && resumedAt > 0 {
			t.Logf("a stage interrupted by the kill at %s ran again %s later (lease 3s)",
				killedAt.Format("15:04:05.000"), time.UnixMicro(resumedAt).Sub(killedAt).Round(time.Millisecond))
		}
	}
	// each start is in the run's timeline with the engine that took it
	spread := map[string]int{}
	rows, err := conn.Query(context.Background(), `SELECT message, COUNT(*) FROM events WHERE kind = 'started' GROUP BY message`)
	must(t, err)
	for rows.Next() {
		var (
			m string
			n int
		)
		must(t, rows.Scan(&m, &n))
		spread[m] = n
	}
	rows.Close()
	if len(spread) < 3 {
		t.Errorf("runs started on %d engines, want the work shared by all: %v", len(spread), spread)
	}
	t.Logf("%d runs, %d interrupted attempts; starts by engine: %v", runs, interrupted, spread)
}
