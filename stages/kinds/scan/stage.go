// Package scan is the scan stage kind: it scans the image a build stage
// pushed — by digest — with the Trivy CLI, stores the report (and
// optionally a CycloneDX SBOM) with the run, prints a summary, and fails
// the stage when a finding's severity is in failOn. A scanner that fails
// (no database, timeout, unreadable report) fails the stage: a scan that
// did not happen never passes.
package scan

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/workspace"
)

// Scanner produces reports of an image.
type Scanner interface {
	Report(ctx context.Context, target Target, log io.Writer) ([]byte, error)
	SBOM(ctx context.Context, target Target, log io.Writer) ([]byte, error)
}

// Stage is one scan attempt.
type Stage struct {
	spec    pipeline.ScanSpec
	scanner Scanner
}

// New returns the factory of the scan kind.
func New(scanner Scanner) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.ScanSpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("scan stage needs a *pipeline.ScanSpec, got %T", spec)
		}
		return &Stage{spec: *s, scanner: scanner}, nil
	}
}

// Validate checks the image reference, when one is set.
func (s *Stage) Validate() error {
	if s.spec.Image != "" && !strings.Contains(s.spec.Image, "@sha256:") {
		return fmt.Errorf("image %q: scan images by digest (repository@sha256:…), not by tag", s.spec.Image)
	}
	return nil
}

func (s *Stage) failOn() []string {
	if len(s.spec.FailOn) == 0 {
		return []string{"CRITICAL"}
	}
	return s.spec.FailOn
}

// Run scans and applies the gate.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	target, err := s.target(run)
	if err != nil {
		return stages.Result{}, err
	}
	digest := target.Image[strings.LastIndex(target.Image, "@")+1:]
	fmt.Fprintf(run.Log, "slipway: scanning %s with Trivy (gate: %s)\n", target.Image, strings.Join(s.failOn(), ", "))
	raw, err := s.scanner.Report(ctx, target, run.Log)
	if err != nil {
		return stages.Result{}, err
	}
	report, err := ParseReport(raw)
	if err != nil {
		return stages.Result{}, err
	}
	res := stages.Result{Outputs: map[string]string{"image": target.Image, "digest": digest},
		Artifacts: []stages.Artifact{{Name: "trivy-report.json", MediaType: "application/json", Subject: digest, Data: raw}}}
	for sev, n := range report.Counts() {
		res.Outputs[strings.ToLower(sev)] = strconv.Itoa(n)
	}
	report.WriteSummary(run.Log)
	if s.spec.SBOM {
		sbom, err := s.scanner.SBOM(ctx, target, run.Log)
		if err != nil {
			return res, fmt.Errorf("writing the SBOM: %w", err)
		}
		res.Artifacts = append(res.Artifacts, stages.Artifact{Name: "sbom.cdx.json", MediaType: "application/vnd.cyclonedx+json", Subject: digest, Data: sbom})
	}
	if failing := report.Gate(s.failOn()); len(failing) > 0 {
		return res, gateError(failing, s.failOn())
	}
	fmt.Fprintln(run.Log, "slipway: no finding at a gated severity; the image passes")
	return res, nil
}

// gateError names the findings that failed the gate, most severe first.
func gateError(failing []Finding, failOn []string) error {
	var parts []string
	for i, f := range failing {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(failing)-5))
			break
		}
		fixed := "no fix yet"
		if f.Fixed != "" {
			fixed = "fixed in " + f.Fixed
		}
		parts = append(parts, fmt.Sprintf("%s (%s) in %s %s, %s", f.ID, f.Severity, f.Package, f.Installed, fixed))
	}
	return fmt.Errorf("%d finding(s) at a gated severity (failOn: %s): %s", len(failing), strings.Join(failOn, ", "), strings.Join(parts, "; "))
}

// target is what to scan: the configured image, or the one image an
// earlier build stage pushed.
func (s *Stage) target(run *stages.Run) (Target, error) {
	t := Target{Image: s.spec.Image, Insecure: s.spec.Insecure, IgnoreUnfixed: s.spec.IgnoreUnfixed}
	if t.Image == "" {
		img, err := stages.BuiltImage(run.Outputs)
		if err != nil {
			return Target{}, fmt.Errorf("%w (scan.image)", err)
		}
		t.Image = img
	}
	if s.spec.Auth.Token != "" {
		t.Username, t.Password = s.spec.Auth.Username, run.Secrets[s.spec.Auth.Token]
		if t.Username == "" {
			t.Username = "slipway"
		}
	}
	ignore := s.spec.IgnoreFile
	if ignore == "" {
		if _, err := os.Stat(run.Workdir + "/.trivyignore"); err != nil {
			return t, nil // no ignore file: nothing ignored
		}
		ignore = ".trivyignore"
	}
	path, err := workspace.Resolve(run.Workdir, ignore, workspace.File)
	if err != nil {
		return Target{}, fmt.Errorf("ignore file: %w", err)
	}
	t.IgnoreFile = path
	return t, nil
}

var _ stages.Stage = (*Stage)(nil)
var _ Scanner = (*Trivy)(nil)
