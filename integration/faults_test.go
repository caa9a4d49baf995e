package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/internal/faultreport"
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
	dir := t.TempDir()
	srv, dsn := startPostgres(t)
	writeFile(t, dir, "svc.yaml", replicaPipeline)
	writeFile(t, dir, "hook-secret", "s3cret\n")
	writeFile(t, dir, "pg-password", srv.Password+"\n")
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
