package scan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/slipwayci/slipway/pipeline"
)

// Finding is one vulnerability found in one package.
type Finding struct {
	ID        string `json:"VulnerabilityID"`
	Package   string `json:"PkgName"`
	Installed string `json:"InstalledVersion"`
	Fixed     string `json:"FixedVersion"`
	Severity  string `json:"Severity"`
	Title     string `json:"Title"`
	Target    string `json:"-"`
}

// Report is the part of Trivy's JSON report (schema 2) Slipway reads.
type Report struct {
	SchemaVersion int    `json:"SchemaVersion"`
	ArtifactName  string `json:"ArtifactName"`
	Results       []struct {
		Target          string    `json:"Target"`
		Vulnerabilities []Finding `json:"Vulnerabilities"`
	} `json:"Results"`
}

// ParseReport reads a Trivy JSON report. A report Slipway cannot read is
// an error: a scan that cannot be read never passes.
func ParseReport(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading the Trivy report: %w", err)
	}
	if r.SchemaVersion != 2 {
		return nil, fmt.Errorf("reading the Trivy report: schema version %d, want 2", r.SchemaVersion)
	}
	if r.ArtifactName == "" {
		return nil, errors.New("reading the Trivy report: it names no scanned artifact")
	}
	return &r, nil
}

// Findings lists every finding, most severe first.
func (r *Report) Findings() []Finding {
	var out []Finding
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			f.Target = res.Target
			out = append(out, f)
		}
	}
	rank := func(s string) int {
		for i, v := range pipeline.Severities {
			if v == s {
				return i
			}
		}
		return len(pipeline.Severities)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if rank(out[i].Severity) != rank(out[j].Severity) {
			return rank(out[i].Severity) < rank(out[j].Severity)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Counts is the number of findings by severity.
func (r *Report) Counts() map[string]int {
	c := map[string]int{}
	for _, s := range pipeline.Severities {
		c[s] = 0
	}
	for _, f := range r.Findings() {
		c[f.Severity]++
	}
	return c
}

// Gate returns the findings whose severity is in failOn.
func (r *Report) Gate(failOn []string) []Finding {
	var out []Finding
	for _, f := range r.Findings() {
		for _, s := range failOn {
			if f.Severity == s {
				out = append(out, f)
			}
		}
	}
	return out
}

// WriteSummary prints the counts and a table of findings for people.
func (r *Report) WriteSummary(w io.Writer) {
	c := r.Counts()
	var parts []string
	for _, s := range pipeline.Severities {
		parts = append(parts, fmt.Sprintf("%s %d", s, c[s]))
	}
	fmt.Fprintf(w, "scan of %s: %s\n", r.ArtifactName, strings.Join(parts, ", "))
	findings := r.Findings()
	if len(findings) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tTITLE")
	for _, f := range findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Severity, f.ID, f.Package, f.Installed, orDash(f.Fixed), f.Title)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
