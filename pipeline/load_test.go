package pipeline

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden .txt files of testdata/*.bad.yaml")

// Each testdata/NAME.bad.yaml must fail with exactly the problems listed in
// testdata/NAME.bad.txt, one per line, in order. NAME.untrusted.bad.yaml is
// read as a pipeline from a repository is.
func TestBadFilesReportEveryProblem(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/*.bad.yaml")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			load := Load
			if strings.HasSuffix(file, ".untrusted.bad.yaml") { // as read from a repository
				load = func(file string) (*Pipeline, error) {
					data, err := os.ReadFile(file)
					if err != nil {
						return nil, err
					}
					return ParseUntrusted(file, data)
				}
			}
			_, err := load(file)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) = %v, want Errors", file, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".txt"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestGoodFilesAndExamplesValidate(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*.good.yaml")
	examples, _ := filepath.Glob("../configs/examples/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no configs/examples/*.yaml")
	}
	for _, file := range append(files, examples...) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := Load(file)
			if err != nil {
				t.Fatalf("Load(%s):\n%v", file, err)
			}
			if p.Metadata.Name == "" || len(p.Stages) == 0 || len(p.Source) == 0 {
				t.Errorf("Load(%s) returned an incomplete pipeline: %+v", file, p)
			}
			for i := range p.Stages {
				if p.Stages[i].Kind() == "" || p.Stages[i].Spec() == nil {
					t.Errorf("stage %d has no kind", i)
				}
			}
		})
	}
}

func TestOversizedFileIsRefusedBeforeParsing(t *testing.T) {
	t.Parallel()
	data := []byte("apiVersion: slipway.dev/v1\n# " + strings.Repeat("x", MaxFileSize) + "\n")
	_, err := Parse("big.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "big.yaml: file is larger than the limit of 1048576 bytes") {
		t.Fatalf("Parse(oversized) = %v", err)
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than the limit of 1048576 bytes") {
		t.Fatalf("Load(oversized) = %v", err)
	}
}

func TestLoadMissingFileSaysWhat(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !strings.Contains(err.Error(), "reading pipeline") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

func TestDecodedValues(t *testing.T) {
	t.Parallel()
	p, err := Load("../configs/examples/gateway-api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := p.Stages[4].Canary
	if len(c.Steps) != 4 || c.Steps[0].Weight != 5 || c.Steps[1].Pause == nil || c.Steps[2].Weight != 50 || c.Steps[2].Interval.String() != "5m0s" {
		t.Errorf("steps decoded as %+v", c.Steps)
	}
	if p.Concurrency.Group != "deploy-{{ .App }}" || p.Concurrency.Policy != "" {
		t.Errorf("concurrency = %+v", p.Concurrency)
	}
	o, err := Load("../configs/examples/order-service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := []string(o.On.Schedule); len(got) != 1 || got[0] != "0 3 * * *" {
		t.Errorf("schedule = %q", got)
	}
	if o.Secrets["GITOPS_TOKEN"].File != "/run/secrets/gitops-token" {
		t.Errorf("secrets = %+v", o.Secrets)
	}
}
