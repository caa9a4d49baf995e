package build

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/pods"
)

func repoWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	return dir
}

func TestRequestFromSettings(t *testing.T) {
	t.Parallel()
	repo := repoWith(t, map[string]string{"svc/Dockerfile.prod": "FROM scratch\n", "svc/app": "x"})
	s := &Stage{spec: pipeline.BuildSpec{Context: "svc", Dockerfile: "Dockerfile.prod", Image: "127.0.0.1:5000/shop/order",
		BuildArgs: map[string]string{"B": "2", "A": "1"}, Target: "prod", Cache: true, Insecure: true, Auth: pipeline.Auth{Token: "REG"}}}
	run := &stages.Run{ID: 7, Workdir: repo, Trigger: pipeline.RunData{ShortSHA: "abc1234"}, Secrets: map[string]string{"REG": "s3cr3t"}}
	req, err := s.request(run)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(repo)
	if req.ContextDir != filepath.Join(real, "svc") || req.Dockerfile != filepath.Join(real, "svc", "Dockerfile.prod") ||
		req.Destination != "127.0.0.1:5000/shop/order:abc1234" || req.CacheRepo != "127.0.0.1:5000/shop/order/cache" ||
		len(req.Insecure) != 1 || req.Insecure[0] != "127.0.0.1:5000" {
		t.Errorf("request = %+v", req)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(req.DockerConfig, &cfg); err != nil || cfg.Auths["127.0.0.1:5000"].Auth != "c2xpcHdheTpzM2NyM3Q=" {
		t.Errorf("docker config = %s", req.DockerConfig)
	}
	args := strings.Join(executorArgs(req, "/workspace", "/kaniko/build/Dockerfile", "/kaniko/digest"), " ")
	for _, want := range []string{"--context=dir:///workspace", "--destination=127.0.0.1:5000/shop/order:abc1234",
		"--build-arg=A=1 --build-arg=B=2", "--target=prod", "--cache=true --cache-repo=127.0.0.1:5000/shop/order/cache",
		"--insecure --insecure-pull --insecure-registry=127.0.0.1:5000", "--digest-file=/kaniko/digest"} {
		if !strings.Contains(args, want) {
			t.Errorf("executor args lack %q: %s", want, args)
		}
	}
}

func TestBadBuildInputsAreClearErrors(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	repo := repoWith(t, map[string]string{"svc/app": "x", "Dockerfile": "FROM scratch\n"})
	os.Symlink(outside, filepath.Join(repo, "elsewhere"))
	tests := []struct {
		spec pipeline.BuildSpec
		want string
	}{
		{pipeline.BuildSpec{Image: "r/x", Context: "svc"}, "Dockerfile: svc/Dockerfile does not exist in the repository"},
		{pipeline.BuildSpec{Image: "r/x", Context: "elsewhere"}, "build context: elsewhere leaves the repository"},
		{pipeline.BuildSpec{Image: "r/x", Dockerfile: "../../etc/passwd"}, "Dockerfile: ../../etc/passwd"},
		{pipeline.BuildSpec{Image: "r/x", Context: "nowhere"}, "nowhere does not exist"},
		{pipeline.BuildSpec{Image: "r/x", Tag: "bad tag!"}, "is not a valid image tag"},
	}
	for _, tt := range tests {
		s := &Stage{spec: tt.spec}
		_, err := s.request(&stages.Run{Workdir: repo, Trigger: pipeline.RunData{ShortSHA: "abc1234"}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.spec, err, tt.want)
		}
	}
	for _, tt := range []struct {
		spec pipeline.BuildSpec
		want string
	}{
		{pipeline.BuildSpec{Image: "UPPER/Case"}, "is not a repository name"},
		{pipeline.BuildSpec{Image: "r/x", Executor: "docker"}, `executor "docker" is not available`},
	} {
		s := &Stage{spec: tt.spec, builders: map[string]Builder{"local": &Local{}}}
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.spec, err, tt.want)
		}
	}
}

func TestMissingExecutorIsAClearError(t *testing.T) {
	t.Parallel()
	repo := repoWith(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	_, err := (&Local{Executor: "/nonexistent/executor"}).Build(context.Background(),
		Request{ContextDir: repo, Dockerfile: filepath.Join(repo, "Dockerfile"), Destination: "r/x:1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "kaniko executor") || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("Build with no executor: %v", err)
	}
}

func TestKubernetesBuildRunsKanikoWithTheSameArguments(t *testing.T) {
	t.Parallel()
	k := &Kubernetes{Pods: &pods.Runner{Namespace: "builds", HelperImage: "reg.example.com/slipway:1"}}
	run := &stages.Run{ID: 7, Stage: "build", Workdir: "/w/run-7"}
	req := Request{ContextDir: "/w/run-7/svc", Dockerfile: "/w/run-7/svc/docker/Dockerfile", Destination: "reg.example.com/shop:abc",
		Cache: true, CacheRepo: "reg.example.com/shop/cache", BuildArgs: map[string]string{"V": "1"},
		DockerConfig: []byte(`{"auths":{}}`), Run: run, Pod: pipeline.PodSettings{
			Resources:    pipeline.PodResources{Requests: map[string]string{"cpu": "500m"}, Limits: map[string]string{"memory": "1Gi"}},
			NodeSelector: map[string]string{"disktype": "ssd"}, Tolerations: []pipeline.Toleration{{Key: "builds", Operator: "Exists"}}}}
	spec, err := k.spec(req, &pods.Checkout{URL: "https://git.example.com/shop.git", Ref: "refs/heads/main", SHA: strings.Repeat("a", 40)})
	if err != nil {
		t.Fatal(err)
	}
	want := executorArgs(req, "/workspace/src/svc", "/workspace/src/svc/docker/Dockerfile", "/dev/termination-log")
	if spec.Image != KanikoImage || strings.Join(spec.Args, " ") != strings.Join(want, " ") || spec.Checkout == nil ||
		string(spec.Files["/kaniko/.docker/config.json"]) != `{"auths":{}}` || spec.Resources.Limits.Memory().String() != "1Gi" ||
		spec.Resources.Requests.Cpu().String() != "500m" || spec.NodeSelector["disktype"] != "ssd" || spec.Tolerations[0].Operator != "Exists" {
		t.Errorf("spec = %+v", spec)
	}
	for _, bad := range []Request{
		{ContextDir: "/elsewhere", Dockerfile: "/w/run-7/Dockerfile", Run: run},
		{ContextDir: "/w/run-7", Dockerfile: "/w/Dockerfile", Run: run},
	} {
		if _, err := k.spec(bad, spec.Checkout); err == nil {
			t.Errorf("a context or Dockerfile outside the checkout was accepted: %+v", bad)
		}
	}
	if _, err := (&Kubernetes{}).Build(context.Background(), req, &bytes.Buffer{}); err != pods.ErrNoCluster {
		t.Errorf("Build without a cluster = %v, want ErrNoCluster", err)
	}
	if _, err := k.Build(context.Background(), req, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "clone stage") {
		t.Errorf("Build without a clone stage = %v", err)
	}
}

// An engine's builder relays into its sandbox only the registries on
// this machine its config lists: a build naming another port of the
// machine — as its destination, its cache or a FROM — is refused before
// any sandbox is made; `slipway run` (no list) relays what the build names.
func TestOnlyListedRegistriesOfThisMachineAreReached(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dockerfile := filepath.Join(dir, "Dockerfile")
	sandboxes := t.TempDir()
	l := &Local{Executor: os.Args[0], WorkRoot: sandboxes, Registries: []string{"localhost:5000"}}
	for _, tt := range []struct {
		from, dest, cache, want string
	}{
		{"127.0.0.1:5000/base/busybox:1", "127.0.0.1:5000/shop/web", "", ""},
		{"busybox", "localhost:5000/shop/web", "127.0.0.1:5000/shop/cache", ""},
		{"--platform=linux/amd64 127.0.0.1:2379/etcd", "127.0.0.1:5000/shop/web", "", "the build names 127.0.0.1:2379, a port on the engine's machine that is not a registry builds may reach (sandbox.registries in the engine config: 127.0.0.1:5000)"},
		{"busybox", "127.0.0.1:8080/api", "", "the build names 127.0.0.1:8080"},
		{"busybox", "127.0.0.1:5000/shop/web", "[::1]:5432/db", "the build names [::1]:5432"},
	} {
		if err := os.WriteFile(dockerfile, []byte("FROM "+tt.from+"\nRUN true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		req := Request{Dockerfile: dockerfile, Destination: tt.dest, CacheRepo: tt.cache}
		_, err := l.reachable(req)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("FROM %s to %s (cache %q): %v, want %q", tt.from, tt.dest, tt.cache, err, tt.want)
		}
		if tt.want == "" {
			continue
		}
		if _, err := l.Build(context.Background(), req, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build: %v, want %q", err, tt.want)
		}
		if entries, _ := os.ReadDir(sandboxes); len(entries) != 0 {
			t.Errorf("a refused build made a sandbox: %v", entries)
		}
	}
	all, err := (&Local{}).reachable(Request{Dockerfile: dockerfile, Destination: "127.0.0.1:5000/shop/web", CacheRepo: "[::1]:5432/db"})
	if err != nil || strings.Join(all, " ") != "127.0.0.1:5000 [::1]:5432" {
		t.Errorf("without a list: %v, %v; want every registry the build names", all, err)
	}
}
