package scan

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

// canned is a Scanner that answers with a fixed report (or error).
type canned struct {
	report []byte
	err    error
	got    *Target
}

func (c canned) Report(ctx context.Context, t Target, log io.Writer) ([]byte, error) {
	*c.got = t
	return c.report, c.err
}

func (c canned) SBOM(ctx context.Context, t Target, log io.Writer) ([]byte, error) {
	return []byte(`{"bomFormat":"CycloneDX"}`), nil
}

const digestRef = "127.0.0.1:5000/shop@sha256:6a133b0491471d54250e4a79c37c2798a85cfb8a90b72c006fe8113164ec5147"

func scanRun(t *testing.T, spec pipeline.ScanSpec, sc canned, outputs map[string]map[string]string) (stages.Result, string, error) {
	t.Helper()
	s, err := New(sc)(&spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		return stages.Result{}, "", err
	}
	var log bytes.Buffer
	res, err := s.Run(context.Background(), &stages.Run{Workdir: t.TempDir(), Log: &log, Outputs: outputs})
	return res, log.String(), err
}

func TestGateAndSummary(t *testing.T) {
	t.Parallel()
	report, _ := os.ReadFile("testdata/report-vulnerable.json")
	built := map[string]map[string]string{"build": {"ref": digestRef, "digest": "sha256:6a13"}, "clone": {"sha": "abc"}}
	tests := []struct {
		failOn []string
		fails  string
	}{
		{nil, "1 finding(s) at a gated severity (failOn: CRITICAL): CVE-2099-0002 (CRITICAL) in example.com/lib v1.0.0, fixed in 1.1.0"},
		{[]string{"HIGH", "CRITICAL"}, "2 finding(s) at a gated severity (failOn: HIGH, CRITICAL): CVE-2099-0002 (CRITICAL) in example.com/lib v1.0.0, fixed in 1.1.0; CVE-2021-38561 (HIGH) in golang.org/x/text v0.3.6, fixed in 0.3.7"},
		{[]string{"MEDIUM"}, ""},
	}
	for _, tt := range tests {
		var got Target
		res, log, err := scanRun(t, pipeline.ScanSpec{FailOn: tt.failOn, SBOM: true}, canned{report: report, got: &got}, built)
		if (tt.fails == "") != (err == nil) || (err != nil && err.Error() != tt.fails) {
			t.Errorf("failOn %v: %v, want %q", tt.failOn, err, tt.fails)
		}
		if got.Image != digestRef {
			t.Errorf("scanned %q, want the built image by digest", got.Image)
		}
		if res.Outputs["high"] != "1" || res.Outputs["critical"] != "1" || res.Outputs["low"] != "1" || len(res.Artifacts) != 2 ||
			res.Artifacts[0].Subject != "sha256:6a133b0491471d54250e4a79c37c2798a85cfb8a90b72c006fe8113164ec5147" {
			t.Errorf("result = %+v", res.Outputs)
		}
		if !strings.Contains(log, "CRITICAL 1, HIGH 1, MEDIUM 0, LOW 1, UNKNOWN 0") || !strings.Contains(log, "CVE-2021-38561") {
			t.Errorf("summary:\n%s", log)
		}
	}
}

func TestScannerFailureNeverPasses(t *testing.T) {
	t.Parallel()
	built := map[string]map[string]string{"build": {"ref": digestRef}}
	for name, c := range map[string]canned{
		"scanner error": {err: errors.New("trivy failed (exit status 1): no vulnerability DB")},
		"empty report":  {report: []byte("")},
		"not JSON":      {report: []byte("<html>")},
		"wrong schema":  {report: []byte(`{"SchemaVersion": 1, "ArtifactName": "x"}`)},
		"no artifact":   {report: []byte(`{"SchemaVersion": 2}`)},
	} {
		var got Target
		c.got = &got
		if _, _, err := scanRun(t, pipeline.ScanSpec{}, c, built); err == nil {
			t.Errorf("%s: the scan passed", name)
		}
	}
}

func TestTargetSelection(t *testing.T) {
	t.Parallel()
	report, _ := os.ReadFile("testdata/report-vulnerable.json")
	var got Target
	c := canned{report: report, got: &got}
	if _, _, err := scanRun(t, pipeline.ScanSpec{Image: "reg/x:latest"}, c, nil); err == nil || !strings.Contains(err.Error(), "by digest") {
		t.Errorf("a tag was accepted: %v", err)
	}
	if _, _, err := scanRun(t, pipeline.ScanSpec{}, c, nil); err == nil || !strings.Contains(err.Error(), "run a build stage first, or name the image (scan.image)") {
		t.Errorf("no build: %v", err)
	}
	two := map[string]map[string]string{"a": {"ref": "r/a@sha256:1"}, "b": {"ref": "r/b@sha256:2"}}
	if _, _, err := scanRun(t, pipeline.ScanSpec{}, c, two); err == nil || !strings.Contains(err.Error(), "name the image (scan.image)") {
		t.Errorf("two builds: %v", err)
	}
	s, _ := New(c)(&pipeline.ScanSpec{IgnoreUnfixed: true, Insecure: true})
	repo := t.TempDir()
	os.WriteFile(filepath.Join(repo, ".trivyignore"), []byte("CVE-2099-0001\n"), 0o644)
	var log bytes.Buffer
	s.Run(context.Background(), &stages.Run{Workdir: repo, Log: &log, Outputs: map[string]map[string]string{"b": {"ref": digestRef}}})
	real, _ := filepath.EvalSymlinks(repo)
	if got.IgnoreFile != filepath.Join(real, ".trivyignore") || !got.IgnoreUnfixed || !got.Insecure {
		t.Errorf("target = %+v", got)
	}
}

// As a server's client, Trivy gets --server and no database flags, and
// the token only in its environment (never an argument, which ps shows);
// alone, it scans offline with its own database.
func TestTrivyClientOfAServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := filepath.Join(dir, "trivy")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + dir + "/args\nenv > " + dir + "/env\nstat -c %a \"$HOME\" > " + dir + "/home-mode\necho '{}'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	target := Target{Image: digestRef}
	client := &Trivy{Path: fake, CacheDir: dir, Offline: true, Server: "http://trivy.slipway:4954", Token: "s3cret"}
	if _, err := client.Report(context.Background(), target, io.Discard); err != nil {
		t.Fatal(err)
	}
	if args := read("args"); !strings.Contains(args, "--server\nhttp://trivy.slipway:4954\n") || strings.Contains(args, "--skip-db-update") ||
		strings.Contains(args, "s3cret") {
		t.Errorf("client args:\n%s", args)
	}
	if env := read("env"); !strings.Contains(env, "TRIVY_TOKEN=s3cret\n") {
		t.Errorf("client env lacks the token:\n%s", env)
	}
	// Trivy's HOME is its own: private while it runs, gone after.
	home := ""
	for _, line := range strings.Split(read("env"), "\n") {
		home = strings.TrimPrefix(line, "HOME=")
		if home != line {
			break
		}
	}
	if home == os.TempDir() || !strings.Contains(home, "slipway-trivy-home-") {
		t.Errorf("Trivy's HOME is %q, want a directory of its own", home)
	}
	if mode := strings.TrimSpace(read("home-mode")); mode != "700" {
		t.Errorf("Trivy's HOME had mode %q while it ran, want 700", mode)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("Trivy's HOME %s is left after the scan (%v)", home, err)
	}
	alone := &Trivy{Path: fake, CacheDir: dir, Offline: true}
	if _, err := alone.Report(context.Background(), target, io.Discard); err != nil {
		t.Fatal(err)
	}
	if args := read("args"); strings.Contains(args, "--server") || !strings.Contains(args, "--offline-scan") {
		t.Errorf("offline args:\n%s", args)
	}
	if env := read("env"); strings.Contains(env, "TRIVY_TOKEN") {
		t.Errorf("offline env has a token:\n%s", env)
	}
}

// A server that refuses the token, or cannot be reached, is named in the
// stage's error with the setting to look at.
func TestTrivyServerFailuresNameTheServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for last, want := range map[string]string{
		"FATAL run error: twirp error unauthenticated: invalid token": "the Trivy server at http://trivy:4954 refused this engine's token (trivy.token)",
		"FATAL dial tcp 10.96.0.9:4954: connect: connection refused":  "the Trivy server at http://trivy:4954 cannot be reached (trivy.server)",
		"FATAL something else": "trivy failed (exit status 1)",
	} {
		fake := filepath.Join(dir, "trivy")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\necho '"+last+"' >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := (&Trivy{Path: fake, CacheDir: dir, Server: "http://trivy:4954"}).Report(context.Background(), Target{Image: digestRef}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", last, err, want)
		}
	}
}
