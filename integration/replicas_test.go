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
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipwayci/slipway/integration/pgtest"
	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/internal/faultreport"
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

// replicaFiles makes what every replica's config (replicaConfig) names —
// the pipeline file, the webhook secret, the password of a PostgreSQL
// server of the test's own — in a directory for them.
func replicaFiles(t *testing.T, pipeline string) (dir string, srv *pgtest.Server, dsn string) {
	t.Helper()
	dir = t.TempDir()
	srv, dsn = startPostgres(t)
	writeFile(t, dir, "svc.yaml", pipeline)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "pg-password", srv.Password+"\n")
	return dir, srv, dsn
}

// deliver sends a signed GitHub push delivery (as github.com would) and
// returns the engine's answer.
func deliver(url, secret string, i int) (int, error) {
	return deliverPush(url, secret, fmt.Sprintf("delivery-%d", i), "https://github.com/acme/svc.git", fmt.Sprintf("%040x", i), fmt.Sprintf("%040x", i+1))
}

// deliverPush sends a signed GitHub delivery of a push to main of repo,
// from before to after.
func deliverPush(url, secret, delivery, repo, before, after string) (int, error) {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": after,
		"repository": map[string]any{"clone_url": repo}, "pusher": map[string]any{"name": "dev"},
		"commits": []any{map[string]any{"added": []string{}, "removed": []string{}, "modified": []string{"main.go"}}},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest("POST", url+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
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
func TestFaultEngineKilledDuringBuilds(t *testing.T) {
	offNode(t)
	dir, srv, dsn := replicaFiles(t, replicaPipeline)
	engines := make([]*engineProc, 3)
	for i := range engines {
		engines[i] = startServe(t, replicaConfig(t, dir, dsn, i))
	}
	conn := connectPostgres(t, srv, dsn)
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

	twice := checkRunsEndedOnce(t, conn, runs)
	interrupted := count(`SELECT COUNT(*) FROM attempts WHERE status = 'interrupted'`)
	if interrupted < 2 {
		t.Errorf("%d attempts interrupted by the two kills, want at least 2", interrupted)
	}
	// takeover time: from a kill to the interrupted attempt's stage running again
	close(kills)
	var takeover time.Duration
	for killedAt := range kills {
		var resumedAt int64
		err := conn.QueryRow(context.Background(), `SELECT MIN(b.started_at) FROM attempts a JOIN attempts b
			ON a.run_id = b.run_id AND a.idx = b.idx AND b.attempt = a.attempt + 1
			WHERE a.status = 'interrupted' AND a.finished_at >= $1`, killedAt.UnixMicro()).Scan(&resumedAt)
		if err == nil && resumedAt > 0 {
			took := time.UnixMicro(resumedAt).Sub(killedAt)
			takeover = max(takeover, took)
			t.Logf("a stage interrupted by the kill at %s ran again %s later (lease 3s)",
				killedAt.Format("15:04:05.000"), took.Round(time.Millisecond))
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
	faultreport.Record(t, faultreport.Outcome{
		Fault:     fmt.Sprintf("one of three engines on PostgreSQL killed (SIGKILL) twice in the middle of builds, %d runs from webhooks", runs),
		Happened:  fmt.Sprintf("%d attempts interrupted; each run taken over once its lease (3 s) ended and resumed at its stage", interrupted),
		Recovered: takeover, RunsLost: count(`SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'`), Double: twice,
	})
}

// checkRunsEndedOnce checks the database of engines that shared runs
// through faults: runs runs, each succeeded, every stage succeeded once
// (none ran again after it succeeded), and no two attempts of a stage
// overlapped in time. It returns how many stages succeeded twice.
func checkRunsEndedOnce(t *testing.T, conn *pgx.Conn, runs int) (twice int) {
	t.Helper()
	count := func(q string) int {
		var n int
		must(t, conn.QueryRow(context.Background(), q).Scan(&n))
		return n
	}
	if n := count(`SELECT COUNT(*) FROM runs`); n != runs {
		t.Errorf("%d runs for %d deliveries", n, runs)
	}
	if n := count(`SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'`); n != 0 {
		var why string
		conn.QueryRow(context.Background(), `SELECT status || ': ' || reason FROM runs WHERE status <> 'succeeded' LIMIT 1`).Scan(&why)
		t.Errorf("%d runs did not succeed; one: %s", n, why)
	}
	twice = count(`SELECT COUNT(*) FROM (SELECT run_id, idx FROM attempts WHERE status = 'succeeded'
			GROUP BY run_id, idx HAVING COUNT(*) > 1) twice`)
	if twice != 0 {
		t.Errorf("%d stages succeeded twice: a stage done before the fault ran again", twice)
	}
	if n := count(`SELECT COUNT(*) FROM stages WHERE status <> 'succeeded'`); n != 0 {
		t.Errorf("%d stages did not succeed", n)
	}
	if n := count(`SELECT COUNT(*) FROM attempts a JOIN attempts b ON a.run_id = b.run_id AND a.idx = b.idx AND a.attempt < b.attempt
			WHERE b.started_at < a.finished_at OR a.finished_at = 0`); n != 0 {
		t.Errorf("%d pairs of attempts of one stage overlap in time", n)
	}
	return twice
}

// A canary release outlives the replica running it. Two engines share one
// PostgreSQL database (lease 3 s). The replica driving a release is killed
// with SIGKILL in the middle of its first step: the other takes the
// release over from its checkpoint, finishes the steps without committing
// one twice and stops at the manual gate, where a promote given to the
// restarted replica reaches it. The next release is aborted and the
// replica rolling it back is killed before it finishes: the other
// completes the rollback — git, Argo CD and traffic back on stable, one
// rollback recorded, one rollback commit.
func TestFaultEngineKilledDuringACanary(t *testing.T) {
	onNode(t)
	e := newReleaseEnv(t)
	e.steadyLoad(t, 40)
	srv, dsn := startPostgres(t)
	writeFile(t, e.dir, "pg-password", srv.Password+"\n")
	conn := connectPostgres(t, srv, dsn)
	replicas := make([]*controlEnv, 2)
	for i := range replicas {
		config := e.controlConfig(t, fmt.Sprintf("replica-%d.yaml", i), fmt.Sprintf(
			"data: data-%d\ndatabase: {url: %q, password: {file: pg-password}, leaseTTL: 3s}", i, dsn))
		replicas[i] = &controlEnv{releaseEnv: e, eng: e.serve(t, config), config: config}
	}
	// owner is the replica holding run id's lease.
	owner := func(id int64) int {
		var who string
		must(t, conn.QueryRow(context.Background(), `SELECT owner FROM runs WHERE id = $1`, id).Scan(&who))
		for i, r := range replicas {
			if strings.Contains(who, fmt.Sprintf("/%d/", r.eng.cmd.Process.Pid)) {
				return i
			}
		}
		t.Fatalf("run %d is held by %q, no replica of this test", id, who)
		return -1
	}
	// commits counts the commits of run id in the config repository (as
	// configState last pulled it) whose subject starts with each prefix.
	commits := func(id int64, prefixes ...string) []int {
		out, err := exec.Command("git", "-C", e.config.Dir, "log", "--format=%s%x00%b%x01").Output()
		must(t, err)
		n := make([]int, len(prefixes))
		for c := range strings.SplitSeq(string(out), "\x01") {
			subject, body, _ := strings.Cut(strings.TrimSpace(c), "\x00")
			for i, p := range prefixes {
				if strings.HasPrefix(subject, p) && strings.Contains(body, fmt.Sprintf("Run: %d\n", id)) {
					n[i]++
				}
			}
		}
		return n
	}
	interrupted := func(id int64) int {
		var n int
		must(t, conn.QueryRow(context.Background(), `SELECT COUNT(*) FROM attempts WHERE run_id = $1 AND status = 'interrupted'`, id).Scan(&n))
		return n
	}

	// seen says where run id stands, for a failure: its release, its
	// commands, its last events, and what each replica printed last.
	seen := func(id int64) string {
		var b strings.Builder
		ctx := context.Background()
		var state, reason, status, who string
		conn.QueryRow(ctx, `SELECT state, reason FROM releases WHERE run_id = $1`, id).Scan(&state, &reason)
		conn.QueryRow(ctx, `SELECT status, owner FROM runs WHERE id = $1`, id).Scan(&status, &who)
		fmt.Fprintf(&b, "release: %s (%s); run %s, held by %q\n", state, reason, status, who)
		for _, q := range []string{
			`SELECT command || ' by ' || actor || ', taken at ' || consumed_at FROM release_commands WHERE run_id = $1 ORDER BY id`,
			`SELECT * FROM (SELECT kind || ': ' || message FROM events WHERE run_id = $1 ORDER BY id DESC LIMIT 12) e`,
		} {
			rows, err := conn.Query(ctx, q, id)
			if err != nil {
				fmt.Fprintf(&b, "%s: %v\n", q, err)
				continue
			}
			for rows.Next() {
				var line string
				rows.Scan(&line)
				fmt.Fprintf(&b, "  %s\n", line)
			}
			rows.Close()
		}
		for i, r := range replicas {
			out := strings.Split(strings.TrimSpace(r.eng.out.String()), "\n")
			fmt.Fprintf(&b, "--- replica %d, last lines:\n%s\n", i, strings.Join(out[max(0, len(out)-30):], "\n"))
		}
		return b.String()
	}

	// Killed mid-step: the other replica carries the release to the gate.
	v2 := pushDemoImage(t, e.reg, "shop/order-service:v2", "v2", 0, 0)
	run1 := replicas[0].trigger(t, v2)
	replicas[0].waitRelease(t, "progressing", "step 1: 20%")
	k := owner(run1)
	replicas[k].eng.killHard(t)
	killedAt := time.Now()
	other := replicas[1-k]
	other.waitRelease(t, "paused", "promotion: manual")
	if got := owner(run1); got != 1-k {
		t.Fatalf("run %d is held by replica %d after replica %d was killed", run1, got, k)
	}
	toGate := time.Since(killedAt)
	t.Logf("replica %d killed at step 1; replica %d brought the release to its gate %s later", k, 1-k, toGate.Round(time.Millisecond))
	replicas[k].eng = e.serve(t, replicas[k].config)
	if out, code := cli(t, "promote", "order-service", "--server", replicas[k].eng.url, "--token", "rm-token"); code != 0 {
		t.Fatalf("slipway promote through the restarted replica: %d\n%s", code, out)
	}
	other.waitRun(t, run1, "succeeded")
	if stable, canary, weight, _ := e.configState(t); stable != v2 || canary != v2 || weight != 0 {
		t.Errorf("after promote: stable %s, canary %s, weight %d", stable, canary, weight)
	}
	stepCommits := commits(run1, "slipway: order-service canary at 20%", "slipway: order-service canary at 50%", "slipway: promote ")
	if !slices.Equal(stepCommits, []int{1, 1, 1}) {
		t.Errorf("run %d committed 20%%, 50%% and the promotion %v times, want once each", run1, stepCommits)
	}
	faultreport.Record(t, faultreport.Outcome{
		Fault:     "the engine driving a canary killed (SIGKILL) in its first step; two engines, lease 3 s",
		Happened:  "the other took the release over from its checkpoint and brought it to its manual gate (the time below includes the step); a promote given to the restarted engine reached it; each step and the promotion committed once",
		Recovered: toGate, Double: extra(stepCommits),
	})
	if n := interrupted(run1); n != 1 {
		t.Errorf("run %d has %d interrupted attempts, want the one the kill cut", run1, n)
	}

	// Killed while rolling back: the other replica completes the rollback.
	v3 := pushDemoImage(t, e.reg, "shop/order-service:v3", "v3", 0, 0)
	run2 := replicas[0].trigger(t, v3)
	// Paused at its gate, or earlier when too little of the load reached
	// its analysis (a busy machine): either way a person decides, here by
	// aborting.
	replicas[0].waitRelease(t, "paused", "")
	k = owner(run2)
	if out, code := cli(t, "abort", "order-service", "--reason", "killed mid-rollback", "--server", replicas[1-k].eng.url, "--token", "rm-token"); code != 0 {
		t.Fatalf("slipway abort: %d\n%s", code, out)
	}
	if err := eventually.Within(time.Minute, func() bool {
		var state string
		conn.QueryRow(context.Background(), `SELECT state FROM releases WHERE run_id = $1`, run2).Scan(&state)
		return state == "rolling-back"
	}); err != nil {
		t.Fatalf("the release of run %d to be rolling back after the abort: %v\n%s", run2, err, seen(run2))
	}
	replicas[k].eng.killHard(t)
	killedAt = time.Now()
	replicas[1-k].waitRun(t, run2, "failed")
	rolledBack := time.Since(killedAt)
	if n := interrupted(run2); n != 1 {
		t.Errorf("run %d has %d interrupted attempts: the kill did not cut the rollback", run2, n)
	}
	if stable, canary, weight, _ := e.configState(t); stable != v2 || canary != v2 || weight != 0 {
		t.Errorf("after the rollback: stable %s, canary %s, weight %d", stable, canary, weight)
	}
	if live := e.liveImage(t, "order-service-v2"); live != v2 {
		t.Errorf("the canary Deployment runs %s after the rollback, want %s", live, v2)
	}
	var rollbacks int
	var actor string
	must(t, conn.QueryRow(context.Background(), `SELECT COUNT(*), MAX(actor) FROM rollbacks WHERE run_id = $1`, run2).Scan(&rollbacks, &actor))
	if rollbacks != 1 || actor != "rm" {
		t.Errorf("run %d recorded %d rollbacks (actor %q), want 1 by rm", run2, rollbacks, actor)
	}
	rollbackCommits := commits(run2, "slipway: roll back ")
	if rollbackCommits[0] != 1 {
		t.Errorf("run %d committed its rollback %d times, want once", run2, rollbackCommits[0])
	}
	faultreport.Record(t, faultreport.Outcome{
		Fault:     "the engine rolling an aborted canary back killed (SIGKILL) before it finished",
		Happened:  "the other completed the rollback: git, Argo CD and traffic back on stable, one rollback recorded, one rollback commit",
		Recovered: rolledBack, Double: extra(rollbackCommits) + max(0, rollbacks-1),
	})
}

// extra is how many of counts are past one each: work done again.
func extra(counts []int) int {
	n := 0
	for _, c := range counts {
		n += max(0, c-1)
	}
	return n
}
