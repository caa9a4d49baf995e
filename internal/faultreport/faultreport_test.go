package faultreport

import (
	"os"
	"strings"
	"testing"
	"time"
)

const doc = "../../docs/faults.md"

// With ReportEnv set (make faults, after the suite ran), the outcomes the
// suite recorded become docs/faults.md's table. Without it, the document
// must still hold the table's markers, for the next run to write it.
func TestWriteFaultTable(t *testing.T) {
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(ReportEnv)
	if path == "" {
		if _, err := Replace(string(text), ""); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	list, err := Read(f)
	if err != nil || len(list) == 0 {
		t.Fatalf("the suite's outcomes (%s): %d, %v: did the fault suite run?", path, len(list), err)
	}
	out, err := Replace(string(text), Table(list))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Outcomes read back in the order of their tests, as a table row each.
func TestOutcomesMakeATable(t *testing.T) {
	in := `{"test":"TestFaultB","fault":"b down","happened":"waited","recovered":1500000000}
{"test":"TestFaultA","fault":"a down","happened":"retried","recovered":200000000,"runsLost":1}
`
	list, err := Read(strings.NewReader(in))
	if err != nil || len(list) != 2 || list[0].Test != "TestFaultA" || list[1].Recovered != 1500*time.Millisecond {
		t.Fatalf("Read = %+v, %v", list, err)
	}
	table := Table(list)
	if !strings.Contains(table, "| a down | retried | 200ms | 1 | 0 | 0 | `TestFaultA` |\n| b down | waited | 1.5s | 0 | 0 | 0 | `TestFaultB` |") {
		t.Errorf("table:\n%s", table)
	}
	if _, err := Read(strings.NewReader("not json\n")); err == nil {
		t.Error("a damaged line was read")
	}
	if _, err := Replace("no markers", table); err == nil {
		t.Error("a document without markers took the table")
	}
}
