// Package faultreport collects what the fault suite (the integration
// tests named TestFault…) measured of each fault it injects, and writes
// it as the table of docs/faults.md (TestWriteFaultTable, which `make
// faults` runs after the suite), so the published figures are the
// suite's own. For _test.go files only.
package faultreport

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Outcome is what one fault case found: a row of the table.
type Outcome struct {
	Test          string        `json:"test"`          // the case's test function
	Fault         string        `json:"fault"`         // what was injected
	Happened      string        `json:"happened"`      // what the engine did
	Recovered     time.Duration `json:"recovered"`     // from the fault's end to normal work again
	RunsLost      int           `json:"runsLost"`      // runs that never ended, or failed for the fault
	Double        int           `json:"double"`        // stages (or commits) executed twice
	BadPromotions int           `json:"badPromotions"` // weights raised or releases promoted that should not have been
}

// ReportEnv names the file Record appends to (JSON lines); `make faults`
// sets it.
const ReportEnv = "SLIPWAY_FAULT_REPORT"

// Record logs o and, with ReportEnv set, appends it to that file.
func Record(t testing.TB, o Outcome) {
	t.Helper()
	o.Test = strings.SplitN(t.Name(), "/", 2)[0]
	t.Logf("fault %q: %s; recovered in %s, %d runs lost, %d double executions, %d bad promotions",
		o.Fault, o.Happened, o.Recovered.Round(time.Millisecond), o.RunsLost, o.Double, o.BadPromotions)
	path := os.Getenv(ReportEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("recording the fault's outcome: %v", err)
	}
	defer f.Close()
	line, _ := json.Marshal(o)
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatalf("recording the fault's outcome: %v", err)
	}
}

// Read reads the outcomes Record appended, ordered by test.
func Read(r io.Reader) ([]Outcome, error) {
	var out []Outcome
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var o Outcome
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, fmt.Errorf("reading an outcome: %w", err)
		}
		out = append(out, o)
	}
	slices.SortStableFunc(out, func(a, b Outcome) int { return strings.Compare(a.Test, b.Test) })
	return out, sc.Err()
}

// Table is the markdown table of outcomes.
func Table(outcomes []Outcome) string {
	var b strings.Builder
	b.WriteString("| fault | what happened | recovered in | runs lost | double executions | bad promotions | test |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, o := range outcomes {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | `%s` |\n", o.Fault, o.Happened, o.Recovered.Round(100*time.Millisecond), o.RunsLost, o.Double, o.BadPromotions, o.Test)
	}
	return b.String()
}

// Markers bound the table in docs/faults.md.
const (
	Begin = "<!-- fault table: make faults writes it -->"
	End   = "<!-- end of the fault table -->"
)

// Replace puts table between the markers of doc.
func Replace(doc, table string) (string, error) {
	before, rest, ok := strings.Cut(doc, Begin)
	_, after, ok2 := strings.Cut(rest, End)
	if !ok || !ok2 {
		return "", fmt.Errorf("the document has no %q … %q", Begin, End)
	}
	return before + Begin + "\n" + table + End + after, nil
}
