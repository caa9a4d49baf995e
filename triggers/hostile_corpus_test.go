package triggers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/integration/pgtest"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

// pushedFile is a pipeline file as a repository holds it: read at each
// push, as RepoFileSource reads one, without git.
type pushedFile struct {
	path   string
	limits pipeline.Limits
}

func (f pushedFile) Load(context.Context, string, string) (*pipeline.Pipeline, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	return pipeline.ParseUntrustedWithin(f.path, data, f.limits)
}

func (f pushedFile) String() string { return f.path }

// corpusRepo is the repository every file of testdata/hostile is pushed
// to: what it is granted, bound and given, on an engine with a cluster.
func corpusRepo(t *testing.T, file string) *Repo {
	ops, err := pipeline.Parse("deploy.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: deploy, app: team-a}\n"+
		"on: {push: {branches: [never]}}\nstages: [{name: a, fake: {}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := engineconfig.Repository{
		Name: "team-a", URL: "https://github.com/Codertocat/Hello-World.git", Forge: "github",
		Secrets: []engineconfig.SecretGrant{{Name: "READ_TOKEN", From: pipeline.SecretRef{Env: "READ"}},
			{Name: "DEPLOY_TOKEN", From: pipeline.SecretRef{Env: "DEPLOY"}, Branches: []string{"release"}}},
		Apps: []engineconfig.AppBinding{{Name: "team-a", ArgoCD: []string{"team-a"}, ArgoCDServer: "argocd.example.com:443",
			Prometheus: "http://prometheus:9090", Notify: []string{"https://hooks.example.com/team-a"},
			GitOps: []engineconfig.GitOpsPath{{Repo: "https://git.example.com/gitops.git", Path: "apps/team-a"}}}},
		Images:          []string{"registry.example.com/team-a"},
		ServiceAccounts: []string{"team-a-pusher"},
		NodePools:       []engineconfig.NodePool{{Name: "builders", NodeSelector: map[string]string{"pool": "builders"}}},
	}
	return &Repo{Config: cfg, Secret: "gh-secret", Cluster: true,
		Sources: []Source{FileSource{P: ops}, pushedFile{path: file, limits: cfg.Limits}}}
}

// Each file of testdata/hostile is one attack a person with push access
// to one repository could make, its first line what the engine must
// answer (# want: …). Pushed through the real intake (a signed GitHub
// delivery) to the real runner, on SQLite and on PostgreSQL, each is
// refused with that answer — in the delivery, or in a run stored ended
// — and no stage of any run is ever tried.
func TestHostilePushesAreRefusedOnBothStores(t *testing.T) {
	files, _ := filepath.Glob("testdata/hostile/*.yaml")
	if len(files) < 20 {
		t.Fatalf("testdata/hostile holds %d files", len(files))
	}
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "s.db")
			if db == "postgres" {
				path = pgtest.DB(t)
			}
			st, r := newRunner(t, path)
			ctx, stop := context.WithCancel(context.Background())
			served := make(chan struct{})
			go func() { r.Serve(ctx); close(served) }()
			defer func() { stop(); <-served }()
			var runs []int64
			for i, file := range files {
				want := wantOf(t, file)
				in, err := NewIntake([]*Repo{corpusRepo(t, file)}, st, r)
				if err != nil {
					t.Fatal(err)
				}
				d := delivery{"github", "push", fmt.Sprintf("hostile-%d", i), "gh-secret", fixture(t, "github-push.json")}
				it := &intakeTest{in: in, st: st}
				code, a, raw := it.send(t, d)
				if code >= 300 && code != 400 {
					t.Errorf("%s: HTTP %d %s", file, code, raw)
					continue
				}
				if len(a.Runs) == 0 {
					if !strings.Contains(raw, jsonText(want)) {
						t.Errorf("%s: the delivery says %s, want %q", file, raw, want)
					}
					continue
				}
				for _, id := range a.Runs {
					run, err := st.GetRun(context.Background(), id)
					if err != nil {
						t.Fatal(err)
					}
					if run.Status != store.RunFailed || !strings.HasPrefix(run.Reason, "refused: ") || !strings.Contains(run.Reason, want) {
						t.Errorf("%s: run %d %s %q, want refused with %q", file, id, run.Status, run.Reason, want)
					}
					if run.Untrusted && !strings.Contains(run.Reason, file+":") {
						t.Errorf("%s: the refusal does not say where in the file: %q", file, run.Reason)
					}
					runs = append(runs, id)
				}
			}
			if err := r.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, id := range runs {
				rows, err := st.ListStages(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range rows {
					if s.Attempts != 0 || s.Status != store.StageSkipped {
						t.Errorf("run %d: stage %s %s after %d attempts; a refused run's stages are never tried", id, s.Name, s.Status, s.Attempts)
					}
				}
			}
		})
	}
}

// wantOf reads a corpus file's first line: # want: TEXT.
func wantOf(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	want, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok || want == "" {
		t.Fatalf("%s: the first line is not # want: …", file)
	}
	return want
}

// jsonText is s as it stands inside a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(bytes.Trim(b, `"`))
}
