package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/internal/faultreport"
	"github.com/slipwayci/slipway/runner/store"
)

// The fault suite is the tests named TestFault…: each injects one fault
// on real systems, checks the outcome and records it (faultreport) for
// the table of docs/faults.md, which `make faults` writes from a run of
// the suite.

// The table names every case of the suite, and no other: it cannot list
// a fault no test injects, or miss one a test does.
func TestFaultTableNamesEveryCase(t *testing.T) {
	t.Parallel()
	var cases []string
	files, err := os.ReadDir(".")
	must(t, err)
	def := regexp.MustCompile(`(?m)^func (TestFault[A-Za-z0-9]+)\(t \*testing\.T\)`)
	for _, f := range files {
		if strings.HasSuffix(f.Name(), "_test.go") {
			src, err := os.ReadFile(f.Name())
			must(t, err)
			for _, m := range def.FindAllStringSubmatch(string(src), -1) {
				if m[1] != "TestFaultTableNamesEveryCase" {
					cases = append(cases, m[1])
				}
			}
		}
	}
	doc, err := os.ReadFile("../docs/faults.md")
	must(t, err)
	_, table, _ := strings.Cut(string(doc), faultreport.Begin)
	table, _, _ = strings.Cut(table, faultreport.End)
	var rows []string
	for _, m := range regexp.MustCompile("`(TestFault[A-Za-z0-9]+)` \\|").FindAllStringSubmatch(table, -1) {
		rows = append(rows, m[1])
	}
	slices.Sort(cases)
	slices.Sort(rows)
	if len(cases) == 0 || !slices.Equal(slices.Compact(rows), cases) {
		t.Errorf("docs/faults.md's table has rows of %v, the suite's cases are %v: run make faults", rows, cases)
	}
}

// PostgreSQL crashes (an immediate shutdown: every session cut, no
// checkpoint) in the middle of runs shared by two engines, and is back 3
// s later, recovering from its log. The engines cannot renew their
// leases, stop their runs before anyone could take them over, and, once
// the database answers, take the runs whose leases ended over and resume
// them: every run ends once, succeeded; no stage that had succeeded runs
// again; no two attempts of a stage overlap.
func TestFaultPostgreSQLCrashesMidRun(t *testing.T) {
	offNode(t)
	dir, srv, dsn := replicaFiles(t, replicaPipeline)
	engines := []*engineProc{startServe(t, replicaConfig(t, dir, dsn, 0)), startServe(t, replicaConfig(t, dir, dsn, 1))}
	const runs = 30
	for i := range runs {
		if code, err := deliver(engines[i%2].url, "s3cret", i); err != nil || code >= 300 {
			t.Fatalf("delivery %d: %d %v", i, code, err)
		}
	}
	conn := connectPostgres(t, srv, dsn)
	count := func(q string) int {
		var n int
		conn.QueryRow(context.Background(), q).Scan(&n)
		return n
	}
	eventually.True(t, time.Minute, "a third of the runs to succeed", func() bool {
		return count(`SELECT COUNT(*) FROM runs WHERE status = 'succeeded'`) >= runs/3
	})
	conn.Close(context.Background())
	crashed := time.Now()
	must(t, srv.Crash(context.Background(), 3*time.Second))
	back := time.Now()
	conn = connectPostgres(t, srv, dsn)
	inFlight := count(`SELECT COUNT(*) FROM runs WHERE status = 'running'`)
	eventually.True(t, 3*time.Minute, "every run to end", func() bool {
		return count(`SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')`) == runs
	})
	// Recovered: the interrupted attempts' stages ran again.
	var resumedAt int64
	conn.QueryRow(context.Background(), `SELECT COALESCE(MAX(b.started_at), 0) FROM attempts a JOIN attempts b
		ON a.run_id = b.run_id AND a.idx = b.idx AND b.attempt = a.attempt + 1 WHERE a.status = 'interrupted'`).Scan(&resumedAt)
	recovered := time.Duration(0)
	if resumedAt > 0 {
		recovered = time.UnixMicro(resumedAt).Sub(back)
	}
	twice := checkRunsEndedOnce(t, conn, runs)
	lost := count(`SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'`)
	interrupted := count(`SELECT COUNT(*) FROM attempts WHERE status = 'interrupted'`)
	if t.Failed() {
		for i, e := range engines {
			t.Logf("--- engine %d:\n%s", i, e.out.String())
		}
	}
	faultreport.Record(t, faultreport.Outcome{
		Fault: fmt.Sprintf("PostgreSQL crashes (down %s) under two engines running %d runs", back.Sub(crashed).Round(100*time.Millisecond), runs),
		Happened: fmt.Sprintf("%d runs in flight when it came back; %d attempts interrupted, resumed by whichever engine took each run over",
			inFlight, interrupted),
		Recovered: recovered, RunsLost: lost, Double: twice,
	})
}

// fillDisk writes a file at path until the disk holding it is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 512} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
	}
}

// The data disk fills up (a 32 MiB disk of its own holds the engine's
// SQLite database) in the middle of a stage. A delivery meanwhile is
// answered 500 and stores nothing; the stage's end cannot be recorded,
// which is not the stage's failure: the engine stops the run there,
// recording nothing more, and once space returns resumes it at that stage
// (the attempt interrupted, "the store refused the run's progress"). The
// run succeeds once, and the store takes new work.
func TestFaultDataDiskFull(t *testing.T) {
	offNode(t)
	need(t, os.Geteuid() == 0, "root (the test mounts a small disk)")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	must(t, os.MkdirAll(disk, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "slipway-full", disk).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small disk: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	writeFile(t, dir, "svc.yaml", `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: svc}
on: {push: {branches: [main]}}
stages:
  - {name: build, fake: {log: ["building"], sleep: 4s, sleepAttempts: [1]}}
  - {name: deploy, fake: {log: ["deploying"]}}
`)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "ops-token", "ops-token-value\n")
	data := filepath.Join(disk, "data")
	config := writeFile(t, dir, "slipway.yaml", fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 127.0.0.1:0
data: %s
repositories:
  - {name: svc, url: "https://github.com/acme/svc.git", forge: github, webhookSecret: {file: hook-secret}, pipelines: [{file: svc.yaml}]}
tokens:
  - {name: ops, role: admin, secret: {file: ops-token}}
`, data))
	eng := startServe(t, config)
	if code, err := deliver(eng.url, "s3cret", 1); err != nil || code != 202 {
		t.Fatalf("the first delivery: %d %v", code, err)
	}
	waitAttemptRunning(t, data, eng.engine, 0, 1)
	filler := filepath.Join(disk, "filler")
	fillDisk(t, filler)
	if code, err := deliver(eng.url, "s3cret", 2); err != nil || code != 500 {
		t.Errorf("a delivery to a full disk: %d %v; want 500 (could not store the delivery)", code, err)
	}
	const stopped = "the store refused a run's progress: stopping the run here"
	eventually.True(t, time.Minute, "the engine to stop the run for the full disk", func() bool { return strings.Contains(eng.out.String(), stopped) })
	must(t, os.Remove(filler))
	freed := time.Now()
	var run struct{ Status, Reason string }
	eventually.True(t, time.Minute, "the run to succeed once space returned", func() bool {
		eng.api(t, "GET", "/api/v1/runs/1", "ops-token-value", &run)
		return run.Status == "succeeded" || run.Status == "failed"
	})
	if code, err := deliver(eng.url, "s3cret", 3); err != nil || code != 202 {
		t.Errorf("a delivery once space returned: %d %v", code, err)
	}
	st := openStore(t, data)
	defer st.Close()
	atts, err := st.ListAttempts(context.Background(), 1)
	must(t, err)
	var got []string
	resumed := time.Duration(0)
	succeeded := map[int]int{}
	for _, a := range atts {
		got = append(got, fmt.Sprintf("%d/%d/%s/%s", a.Index, a.Attempt, a.Status, a.Error))
		if a.Status == store.StageSucceeded {
			succeeded[a.Index]++
		}
		if a.Index == 0 && a.Attempt == 2 {
			resumed = a.StartedAt.Sub(freed)
		}
	}
	want := []string{"0/1/interrupted/the store refused the run's progress", "0/2/succeeded/", "1/1/succeeded/"}
	if run.Status != "succeeded" || !slices.Equal(got, want) {
		t.Errorf("run 1 %s (%s), attempts %v; want succeeded, attempts %v\n%s", run.Status, run.Reason, got, want, eng.out.String())
	}
	lost, double := 0, 0
	if run.Status != "succeeded" {
		lost = 1
	}
	for _, n := range succeeded {
		double += max(0, n-1)
	}
	faultreport.Record(t, faultreport.Outcome{
		Fault:     "the data disk full (SQLite) in the middle of a stage, then space freed",
		Happened:  "a delivery meanwhile answered 500, nothing stored; the stage's end could not be recorded, so the engine stopped the run there and resumed it at that stage once space returned",
		Recovered: resumed, RunsLost: lost, Double: double,
	})
}
