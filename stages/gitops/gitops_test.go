package gitops

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/integration/gitserver"
)

const digest = "sha256:3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e"

func write(t *testing.T, root, rel, body string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755)
	if err := os.WriteFile(filepath.Join(root, rel), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSetImageKeepsCommentsAndReportsChange(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "apps/shop/kustomization.yaml", `# the shop
resources:
  - deployment.yaml # the workload
images:
  - name: order-service # canary image
    newTag: old
`)
	write(t, root, "apps/shop/values.yaml", `canary:
  # set by slipway
  image: reg/order-service:old
  replicas: 1
`)
	write(t, root, "apps/shop/deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: order-service-canary}
spec:
  template:
    spec:
      containers:
        - name: sidecar
          image: busybox
        - name: order-service # the app
          image: reg/order-service:old
`)
	tests := []struct {
		loc  Locator
		file string
		want []string
	}{
		{Locator{Kustomize: "order-service"}, "kustomization.yaml", []string{"# the shop", "# the workload", "name: order-service # canary image", "newName: reg/order-service", "digest: " + digest}},
		{Locator{HelmFile: "values.yaml", HelmKey: "canary.image"}, "values.yaml", []string{"# set by slipway", "image: reg/order-service@" + digest, "replicas: 1"}},
		{Locator{ManifestFile: "deployment.yaml", Container: "order-service"}, "deployment.yaml", []string{"image: busybox", "- name: order-service # the app", "image: reg/order-service@" + digest}},
	}
	for _, tt := range tests {
		changed, err := SetImage(root, "apps/shop", tt.loc, "reg/order-service", digest)
		if err != nil || !changed {
			t.Fatalf("%+v: changed %v, %v", tt.loc, changed, err)
		}
		b, _ := os.ReadFile(filepath.Join(root, "apps/shop", tt.file))
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q:\n%s", tt.file, w, b)
			}
		}
		if strings.Contains(string(b), "newTag") {
			t.Errorf("%s still has newTag:\n%s", tt.file, b)
		}
		if changed, err := SetImage(root, "apps/shop", tt.loc, "reg/order-service", digest); err != nil || changed {
			t.Errorf("%+v again: changed %v, %v (want no change)", tt.loc, changed, err)
		}
	}
}

func TestSetImageRefusesBadTargets(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	write(t, outside, "values.yaml", "image: x\n")
	os.Symlink(outside, filepath.Join(root, "escape"))
	write(t, root, "apps/x/multi.yaml", "a: 1\n---\nb: 2\n")
	write(t, root, "apps/x/deployment.yaml", "spec: {template: {spec: {containers: [{name: a, image: b}]}}}\n")
	for _, tt := range []struct {
		dir  string
		loc  Locator
		want string
	}{
		{"escape", Locator{HelmFile: "values.yaml", HelmKey: "image"}, "leaves the repository"},
		{"../../etc", Locator{HelmFile: "passwd", HelmKey: "x"}, "does not exist"},
		{"apps/x", Locator{HelmFile: "multi.yaml", HelmKey: "a"}, "several YAML documents"},
		{"apps/x", Locator{ManifestFile: "deployment.yaml", Container: "missing"}, `no container "missing"`},
		{"apps/x", Locator{}, "no image locator"},
	} {
		if _, err := SetImage(root, tt.dir, tt.loc, "r/x", digest); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %+v: %v, want %q", tt.dir, tt.loc, err, tt.want)
		}
	}
}

func TestWriterCommitsOnceAndSurvivesARace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, err := gitserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url, _ := srv.CreateRepo("gitops")
	wt, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "wt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Commit("main", "init", map[string]string{"apps/shop/values.yaml": "image: reg/x:old\n"}); err != nil {
		t.Fatal(err)
	}
	if err := wt.Push("main"); err != nil {
		t.Fatal(err)
	}
	w := &Writer{URL: url, Branch: "main"}
	set := func(root string) (bool, error) {
		return SetImage(root, "apps/shop", Locator{HelmFile: "values.yaml", HelmKey: "image"}, "reg/x", digest)
	}
	// Someone else pushes while the first attempt is editing.
	raced := false
	racing := func(root string) (bool, error) {
		if !raced {
			raced = true
			if _, err := wt.Commit("main", "someone else", map[string]string{"apps/other/values.yaml": "x: 1\n"}); err != nil {
				return false, err
			}
			if err := wt.Push("main"); err != nil {
				return false, err
			}
		}
		return set(root)
	}
	res, err := w.Write(ctx, "deploy x@"+digest, racing)
	if err != nil || !res.Changed || res.Attempts != 2 || len(res.Commit) != 40 {
		t.Fatalf("write during a race: %+v, %v", res, err)
	}
	again, err := w.Write(ctx, "deploy x again", set)
	if err != nil || again.Changed || again.Commit != res.Commit {
		t.Errorf("a no-op write: %+v, %v (want no new commit)", again, err)
	}
	check, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "check"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(check.Dir, "apps/shop/values.yaml"))
	_, other := os.Stat(filepath.Join(check.Dir, "apps/other/values.yaml"))
	if string(b) != "image: reg/x@"+digest+"\n" || other != nil {
		t.Errorf("config repo after the race: values %q, other commit kept: %v", b, other == nil)
	}
	w.MaxAttempts = 1
	alwaysRacing := func(root string) (bool, error) {
		racer, err := gitserver.Clone(url, filepath.Join(t.TempDir(), "racer"))
		if err != nil {
			return false, err
		}
		if _, err := racer.Commit("main", "race again", map[string]string{"apps/other/n.txt": "n\n"}); err != nil {
			return false, err
		}
		if err := racer.Push("main"); err != nil {
			return false, err
		}
		return SetImage(root, "apps/shop", Locator{HelmFile: "values.yaml", HelmKey: "image"}, "reg/y", digest)
	}
	if _, err := w.Write(ctx, "lose", alwaysRacing); err == nil || !strings.Contains(err.Error(), "non-fast-forward") {
		t.Errorf("losing every race: %v", err)
	}
}
