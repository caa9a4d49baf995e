package triggers

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/integration/gitserver"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const repoPipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata: {name: %s}
on: {push: {branches: [main]}}
stages:
  - {name: a, fake: {}}
`

// sourceRepo is a new repository on a git server of the test's, and a
// work tree of it.
func sourceRepo(t *testing.T, name string) (string, *gitserver.WorkTree) {
	t.Helper()
	srv, err := gitserver.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url, err := srv.CreateRepo(name)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "wt"))
	if err != nil {
		t.Fatal(err)
	}
	return url, wt
}

// The pipeline file is read from the repository, over real git HTTP, at
// the pushed commit — even after the branch has moved past it.
func TestRepoFileSourceReadsThePushedCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, wt := sourceRepo(t, "shop")
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
		{RepoFileSource{URL: strings.TrimSuffix(url, "/shop.git") + "/absent.git", Path: "p.yaml"}, "refs/heads/main", "", "fetching"},
	} {
		if _, err := tt.src.Load(ctx, tt.ref, tt.sha); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s, %q, %q) = %v, want an error with %q", tt.src, tt.ref, tt.sha, err, tt.want)
		}
	}
}

// A push of large files costs the engine little memory to read its
// pipeline file: the commit's objects stay packed on disk, and only the
// file is read out — indexing the pack reads an object at a time (a
// delta's base whole), about the largest of them, never their sum. (The
// in-memory storage this replaced allocated more than their sum; this
// allocates about one file and the fetch's buffers.) (Allocation is counted, not timed: this test is
// not parallel, so the package's other tests allocate nothing meanwhile.)
func TestAPushOfLargeFilesIsNotReadIntoMemory(t *testing.T) {
	ctx := context.Background()
	url, wt := sourceRepo(t, "large")
	const files, size = 8, 2 << 20
	content := map[string]string{".slipway.yaml": strings.Replace(repoPipeline, "%s", "large", 1)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range files {
		b := make([]byte, size)
		for j := 0; j < size; j += 8 {
			binary.LittleEndian.PutUint64(b[j:], rng.Uint64())
		}
		content[fmt.Sprintf("big/f%d", i)] = string(b)
	}
	if _, err := wt.Commit("main", "large files", content); err != nil {
		t.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	content = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p, err := RepoFileSource{URL: url, Path: ".slipway.yaml"}.Load(ctx, "refs/heads/main", "")
	runtime.ReadMemStats(&after)
	if err != nil || p.Metadata.Name != "large" {
		t.Fatalf("Load = %v, %v", p, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > files*size {
		t.Errorf("reading the pipeline file of a commit of %d MiB of files allocated %d MiB", files*size>>20, alloc>>20)
	}
}

// A repository's heads are listed over real git HTTP: its branches and
// its tags, nothing else (an empty repository has none); a
// repository that is not there is an error that names it.
func TestGitHeadsListsBranchesAndTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, wt := sourceRepo(t, "heads")
	mainHead, err := wt.Commit("main", "first", map[string]string{"a": "1"})
	must(t, err)
	devHead, err := wt.Commit("dev", "second", map[string]string{"b": "2"})
	must(t, err)
	must(t, wt.Tag("v1"))
	must(t, wt.Push("main", "dev", "v1"))
	heads, err := GitHeads(ctx, &Repo{Config: engineconfig.Repository{Name: "heads", URL: url}})
	want := map[string]string{"refs/heads/main": mainHead, "refs/heads/dev": devHead, "refs/tags/v1": devHead}
	if err != nil || !maps.Equal(heads, want) {
		t.Errorf("GitHeads = %v, %v; want %v", heads, err, want)
	}
	empty, _ := sourceRepo(t, "empty")
	if heads, err := GitHeads(ctx, &Repo{Config: engineconfig.Repository{URL: empty}}); err != nil || len(heads) != 0 {
		t.Errorf("GitHeads of an empty repository = %v, %v; want none", heads, err)
	}
	absent := strings.TrimSuffix(url, "/heads.git") + "/absent.git"
	if _, err := GitHeads(ctx, &Repo{Config: engineconfig.Repository{URL: absent}, Token: "s3cret-token"}); err == nil || !strings.Contains(err.Error(), absent) || strings.Contains(err.Error(), "s3cret-token") {
		t.Errorf("GitHeads of a missing repository: %v", err)
	}
}
