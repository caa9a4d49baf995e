package triggers

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/integration/gitserver"
)

const repoPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: %s}
on: {push: {branches: [main]}}
stages:
  - {name: a, fake: {}}
`

// The pipeline file is read from the repository, over real git HTTP, at
// the pushed commit — even after the branch has moved past it.
func TestRepoFileSourceReadsThePushedCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := gitserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url, err := srv.CreateRepo("shop")
	if err != nil {
		t.Fatal(err)
	}
	wt, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "wt"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := wt.Commit("main", "first", map[string]string{".slipway/pipeline.yaml": strings.Replace(repoPipeline, "%s", "shop-v1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Commit("main", "second", map[string]string{".slipway/pipeline.yaml": strings.Replace(repoPipeline, "%s", "shop-v2", 1)}); err != nil {
		t.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	src := RepoFileSource{URL: url, Path: ".slipway/pipeline.yaml"}
	p, err := src.Load(ctx, "refs/heads/main", "")
	if err != nil || p.Metadata.Name != "shop-v2" {
		t.Fatalf("tip: %v %v", p, err)
	}
	p, err = src.Load(ctx, "refs/heads/main", first)
	if err != nil || p.Metadata.Name != "shop-v1" {
		t.Fatalf("at the first commit: %v %v", p, err)
	}
	if !strings.Contains(p.File, first[:7]) {
		t.Errorf("pipeline file name %q does not say which commit", p.File)
	}
	for _, tt := range []struct {
		src            RepoFileSource
		ref, sha, want string
	}{
		{RepoFileSource{URL: url, Path: "missing.yaml"}, "refs/heads/main", "", "file not found"},
		{src, "main", "", "is neither a branch nor a tag"},
		{src, "refs/heads/nope", "", "fetching"},
		{src, "refs/heads/main", "not-a-sha", "is not a commit id"},
		{RepoFileSource{URL: srv.URL + "/absent.git", Path: "p.yaml"}, "refs/heads/main", "", "fetching"},
	} {
		if _, err := tt.src.Load(ctx, tt.ref, tt.sha); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s, %q, %q) = %v, want an error with %q", tt.src, tt.ref, tt.sha, err, tt.want)
		}
	}
}
