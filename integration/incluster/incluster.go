// Package incluster deploys Slipway into the local environment's cluster
// the way an operator would: its image built with Kaniko from the
// repository's Dockerfile, the Kaniko and Trivy images its stages and
// scan server run, the Secret and volumes an operator provides, and a
// platform config repository — deploy/ as the base, a local overlay —
// that the real Argo CD syncs. The in-cluster release test and make demo
// use it.
package incluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/slipwayimage"
	"github.com/slipwayci/slipway/integration/trivydb"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/tools"
)

// Namespace is where deploy/ puts the engine and the Trivy server.
const Namespace = "slipway"

// TrivyServer is the Trivy server's address inside the cluster.
const TrivyServer = "http://trivy.slipway.svc:4954"

// Options says what to deploy.
type Options struct {
	Source  string // the Slipway checkout: its Dockerfile and deploy/
	Slipway string // a static slipway binary (CGO_ENABLED=0)
	// Engine is the engine config (slipway.yaml, read from /etc/slipway);
	// Files are the other files it names there (pipelines), by name.
	Engine string
	Files  map[string]string
	// Env is environment the engine gets from its Secret (what the
	// config's {env: …} secrets name), beside SLIPWAY_ADMIN_TOKEN.
	Env        map[string]string
	AdminToken string
	// Reach is what the stage Pods must reach besides what deploy/
	// allows them, as host:port: the node's relays to the git server and
	// the registry, which the operator adds in a NetworkPolicy of its own.
	Reach []string
	Log   func(format string, args ...any) // progress; default none
}

// Slipway is Slipway running in the cluster.
type Slipway struct {
	URL      string // its Service, http://CLUSTER-IP (this machine reaches it through kube-proxy)
	Image    string // its image as the cluster names it, POD-REGISTRY/slipway/slipway@sha256:…
	Platform string // the platform repository Argo CD syncs it from
	Trivy    string // the Trivy server's Service, http://CLUSTER-IP:4954
	// TrivyToken is the token the Trivy server asks its clients for.
	TrivyToken string
}

// Deploy builds Slipway's image, commits the platform repository, has
// Argo CD sync it to Healthy and waits until the engine answers through
// its Service. env needs its cluster and Argo CD; dir holds the volumes
// and the platform repository's work tree.
func Deploy(ctx context.Context, env *localenv.Env, dir string, o Options) (*Slipway, error) {
	if env.ArgoCD == nil || env.Node == nil {
		return nil, fmt.Errorf("deploying Slipway in the cluster needs the environment's cluster and Argo CD")
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	s := &Slipway{}
	images, err := s.pushImages(ctx, env, o)
	if err != nil {
		return nil, err
	}
	if s.TrivyToken, err = provide(ctx, env, dir, o); err != nil {
		return nil, err
	}
	rev, err := s.commitPlatform(env, dir, o, images)
	if err != nil {
		return nil, err
	}
	if err := env.ArgoCD.CreateApp(ctx, dir, "slipway", s.Platform, "slipway/local", Namespace); err != nil {
		return nil, err
	}
	client, err := argocd.Dial(env.ArgoCD.Server, env.ArgoCD.Token, true, false)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	began := time.Now()
	if _, err := client.SyncAndWait(ctx, "slipway", rev, 3*time.Minute, func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("syncing Slipway from %s: %w", s.Platform, err)
	}
	o.Log("Argo CD synced Slipway (%.7s of %s) to Healthy in %s", rev, s.Platform, time.Since(began).Round(time.Millisecond))
	if s.URL, err = serviceURL(ctx, env, "slipway", ""); err != nil {
		return nil, err
	}
	if s.Trivy, err = serviceURL(ctx, env, "trivy", ":4954"); err != nil {
		return nil, err
	}
	return s, s.answers(ctx)
}

// images are what the overlay names: Slipway's (also the stage Pods'
// helper), the Kaniko executor's and the Trivy server's.
type images struct{ slipway, kaniko, trivyRepo, trivyTag string }

func (s *Slipway) pushImages(ctx context.Context, env *localenv.Env, o Options) (images, error) {
	began := time.Now()
	var im images
	var err error
	s.Image, err = slipwayimage.Build(ctx, slipwayimage.Options{Dockerfile: filepath.Join(o.Source, "Dockerfile"), Slipway: o.Slipway,
		Trivy: tools.Trivy(), Kaniko: tools.Kaniko(), Registry: env.Registry.Addr, Ref: "slipway/slipway:local"})
	if err != nil {
		return im, fmt.Errorf("building Slipway's image: %w", err)
	}
	// The cluster names the images as its node reaches the registry.
	s.Image = strings.Replace(s.Image, env.Registry.Addr, env.PodRegistry, 1)
	o.Log("Slipway's image built by Kaniko from %s in %s: %s", filepath.Join(o.Source, "Dockerfile"), time.Since(began).Round(time.Second), s.Image)
	im.slipway = s.Image
	kaniko := "/slipway/kaniko:" + tools.Version("KANIKO")
	if _, err := registry.PushKaniko(env.Registry.Addr+kaniko, tools.Kaniko()); err != nil {
		return im, fmt.Errorf("pushing the Kaniko executor's image: %w", err)
	}
	im.kaniko = env.PodRegistry + kaniko
	trivy := "/base/trivy"
	im.trivyTag = tools.Version("TRIVY")
	if _, err := registry.PushTrivy(env.Registry.Addr+trivy+":"+im.trivyTag, tools.Trivy()); err != nil {
		return im, fmt.Errorf("pushing the Trivy server's image: %w", err)
	}
	im.trivyRepo = env.PodRegistry + trivy
	return im, nil
}

// provide is what deploy/ leaves to the operator: the volumes (host
// directories here, no provisioner), the Trivy server's offline database,
// the namespace and its Secret.
func provide(ctx context.Context, env *localenv.Env, dir string, o Options) (trivyToken string, err error) {
	trivyDB := filepath.Join(dir, "trivy-server")
	if err := trivydb.Write(trivyDB, trivydb.Fixture); err != nil {
		return "", fmt.Errorf("writing the Trivy server's database: %w", err)
	}
	if err := kubenode.HostVolume(ctx, env.Kube, trivyDB, Namespace, "trivy-db", 65532); err != nil {
		return "", err
	}
	if err := kubenode.HostVolume(ctx, env.Kube, filepath.Join(dir, "slipway-data"), Namespace, "slipway-data", 65532); err != nil {
		return "", err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating namespace %s: %w", Namespace, err)
	}
	random := make([]byte, 16)
	rand.Read(random)
	trivyToken = hex.EncodeToString(random)
	data := map[string]string{"admin-token": o.AdminToken, "trivy-token": trivyToken}
	for name, value := range o.Env {
		data[name] = value
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slipway-secrets"}, StringData: data}
	if _, err := env.Kube.CoreV1().Secrets(Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating the Secret slipway-secrets: %w", err)
	}
	return trivyToken, nil
}

// overlay is the local overlay of deploy/: the images, the engine config
// and its files, the Trivy server offline, the stage Pods' images, and
// the engine's environment from its Secret.
const overlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base, reach.yaml]
images:
  - {name: ghcr.io/slipwayci/slipway, newName: %s, digest: %s}
  - {name: ghcr.io/aquasecurity/trivy, newName: %s, newTag: %s}
configMapGenerator:
  - name: slipway-config
    namespace: slipway
    behavior: replace
    files: [%s]
patches:
  - target: {kind: Deployment, name: trivy}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: --skip-db-update}
  - target: {kind: Deployment, name: slipway}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: SLIPWAY_HELPER_IMAGE, value: "%s"}}
      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: SLIPWAY_KANIKO_IMAGE, value: "%s"}}
`

// commitPlatform writes deploy/ and the overlay into a new platform
// repository on the environment's git server and returns the commit.
func (s *Slipway) commitPlatform(env *localenv.Env, dir string, o Options, im images) (string, error) {
	var err error
	if s.Platform, err = env.Git.CreateRepo("platform"); err != nil {
		return "", err
	}
	work, err := gitserver.Clone(s.Platform, filepath.Join(dir, "platform"))
	if err != nil {
		return "", err
	}
	engine, err := withClusterSettings(o.Source, o.Engine)
	if err != nil {
		return "", err
	}
	files := map[string]string{"slipway/local/slipway.yaml": engine}
	base, err := filepath.Glob(filepath.Join(o.Source, "deploy", "*.yaml"))
	if err != nil || len(base) == 0 {
		return "", fmt.Errorf("finding deploy/*.yaml under %s: none (%v)", o.Source, err)
	}
	for _, f := range base {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		files["slipway/base/"+filepath.Base(f)] = string(b)
	}
	config := []string{"slipway.yaml"}
	for name, body := range o.Files {
		files["slipway/local/"+name] = body
		config = append(config, name)
	}
	slices.Sort(config[1:])
	repo, digest, _ := strings.Cut(im.slipway, "@")
	k := fmt.Sprintf(overlay, repo, digest, im.trivyRepo, im.trivyTag, strings.Join(config, ", "), im.slipway, im.kaniko)
	names := make([]string, 0, len(o.Env))
	for name := range o.Env {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		k += fmt.Sprintf("      - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: %s, valueFrom: {secretKeyRef: {name: slipway-secrets, key: %s}}}}\n", name, name)
	}
	files["slipway/local/kustomization.yaml"] = k
	reach, err := kubenode.ReachPolicy("slipway-builds", o.Reach)
	if err != nil {
		return "", err
	}
	raw, err := yaml.Marshal(reach)
	if err != nil {
		return "", err
	}
	files["slipway/local/reach.yaml"] = string(raw)
	rev, err := work.Commit("main", "slipway in the local cluster", files)
	if err != nil {
		return "", err
	}
	return rev, work.Push("main")
}

// withClusterSettings is the engine config with deploy/slipway.yaml's
// trivy and kubernetes sections (where the cluster's Trivy server and build
// namespace are), which an engine config of one's own keeps as they are.
func withClusterSettings(source, engine string) (string, error) {
	base, err := os.ReadFile(filepath.Join(source, "deploy", "slipway.yaml"))
	if err != nil {
		return "", fmt.Errorf("reading deploy's engine config: %w", err)
	}
	var all, own map[string]any
	if err := yaml.Unmarshal(base, &all); err != nil {
		return "", fmt.Errorf("reading deploy's engine config: %w", err)
	}
	if err := yaml.Unmarshal([]byte(engine), &own); err != nil {
		return "", fmt.Errorf("reading the engine config: %w", err)
	}
	sections := map[string]any{}
	for _, key := range []string{"trivy", "kubernetes"} {
		if _, set := own[key]; set {
			return "", fmt.Errorf("the engine config sets %s, which deploy/slipway.yaml says for the cluster", key)
		}
		sections[key] = all[key]
	}
	out, err := yaml.Marshal(sections)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(engine, "\n") + "\n" + string(out), nil
}

// EngineLog is the last lines of the engine Pods' logs, read through the
// API (the kubelet serves them): what to look at when a release in the
// cluster did not end as expected.
func EngineLog(ctx context.Context, env *localenv.Env, lines int64) string {
	pods, err := env.Kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=slipway"})
	if err != nil {
		return "listing the engine's Pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		raw, err := env.Kube.CoreV1().Pods(Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&b, "--- Pod %s: reading its log: %v\n", p.Name, err)
			continue
		}
		fmt.Fprintf(&b, "--- Pod %s (%s), last %d lines:\n%s", p.Name, p.Status.Phase, lines, raw)
	}
	return b.String()
}

// serviceURL is http://CLUSTER-IP+port of the Service name in Namespace.
func serviceURL(ctx context.Context, env *localenv.Env, name, port string) (string, error) {
	svc, err := env.Kube.CoreV1().Services(Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading Service %s/%s: %w", Namespace, name, err)
	}
	return "http://" + svc.Spec.ClusterIP + port, nil
}

// answers waits (30 s at most) for the engine to answer through its
// Service: Healthy in Argo CD, kube-proxy may take a moment more to route
// the Service to its Pod.
func (s *Slipway) answers(ctx context.Context) error {
	return procs.WaitUntil(ctx, 30*time.Second, "the engine to answer through its Service at "+s.URL, procs.Answers200(s.URL+"/healthz"))
}
