// Package argocd runs the real Argo CD — the pinned v2.14 multi-call
// binary as repo-server, application-controller and api-server, with
// Redis — against the local cluster, for tests and the demo. It installs
// Argo CD's own CRDs, its labelled ConfigMaps and Secret, the default
// AppProject and a cluster Secret for the local API server; the api-server
// runs with real authentication, and Start returns an API token of the
// account "slipway", made the usual way (an admin session, then the
// Account service).
package argocd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	"github.com/argoproj/argo-cd/v2/pkg/apiclient/account"
	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apiclient/session"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/stages/tools"
)

// Namespace is where Argo CD runs and keeps its Applications.
const Namespace = "argocd"

// Account is the Argo CD account Slipway uses.
const Account = "slipway"

// ArgoCD is a running Argo CD.
type ArgoCD struct {
	Server        string // api-server address (plain text gRPC/HTTP), 127.0.0.1:PORT
	Token         string // an API token of Account
	AdminPassword string
	ClusterServer string // the destination server Applications name
	procs         []*procs.Proc
}

// Binary is the pinned Argo CD multi-call binary.
func Binary() string {
	return filepath.Join(tools.Dir(), "argocd-"+tools.Version("ARGOCD"), "argocd")
}

// Missing says what Argo CD needs that is not installed.
func Missing() []string {
	var out []string
	for _, bin := range []string{Binary(), filepath.Join(tools.Dir(), "kustomize-"+tools.Version("KUSTOMIZE"), "kustomize")} {
		if tools.Check(bin) != nil {
			out = append(out, bin+" (make tools)")
		}
	}
	for _, bin := range []string{"redis-server", "git"} {
		if _, err := exec.LookPath(bin); err != nil {
			out = append(out, bin+" (make tools)")
		}
	}
	if _, err := os.Stat(crdDir()); err != nil {
		out = append(out, "Argo CD's CRDs in the Go module cache (make tools downloads them)")
	}
	return out
}

func crdDir() string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	return filepath.Join(cache, "github.com/argoproj/argo-cd/v2@"+tools.Version("ARGOCD"), "manifests", "crds")
}

// Start runs Argo CD against c, with its files under dir.
func Start(ctx context.Context, dir string, c *cluster.Cluster) (a *ArgoCD, err error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("Argo CD needs %v", m)
	}
	a = &ArgoCD{ClusterServer: c.Server}
	defer func() {
		if err != nil {
			a.Stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, err
	}
	kube, err := c.Client()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(c.Config())
	if err != nil {
		return nil, err
	}
	if err := installCRDs(ctx, dyn); err != nil {
		return nil, err
	}
	a.AdminPassword = randomString(18)
	if err := bootstrap(ctx, kube, dyn, c, a.AdminPassword); err != nil {
		return nil, err
	}
	if err := a.startProcesses(ctx, dir, c); err != nil {
		return nil, err
	}
	if a.Token, err = a.accountToken(ctx, dir); err != nil {
		return nil, err
	}
	return a, nil
}

// Stop stops Argo CD's processes.
func (a *ArgoCD) Stop() {
	for i := len(a.procs) - 1; i >= 0; i-- {
		a.procs[i].Stop(10 * time.Second)
	}
}

// Procs lists Argo CD's processes (for logs).
func (a *ArgoCD) Procs() []*procs.Proc { return a.procs }

// Client is an Argo CD API client authenticated as Account.
func (a *ArgoCD) Client(dir string) (apiclient.Client, error) {
	return apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: a.Server, PlainText: true, AuthToken: a.Token,
		ConfigPath: filepath.Join(dir, "no-local-config")})
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// CreateApp creates an Application in project default: the manifests at
// path of repo (branch main), deployed to namespace (created if missing)
// on the local cluster. dir holds the client's scratch files.
func (a *ArgoCD) CreateApp(ctx context.Context, dir, name, repo, path, namespace string) error {
	client, err := a.Client(dir)
	if err != nil {
		return err
	}
	closer, apps, err := client.NewApplicationClient()
	if err != nil {
		return err
	}
	defer closer.Close()
	_, err = apps.Create(ctx, &application.ApplicationCreateRequest{Application: &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Spec: v1alpha1.ApplicationSpec{Project: "default",
			Source:      &v1alpha1.ApplicationSource{RepoURL: repo, Path: path, TargetRevision: "main"},
			Destination: v1alpha1.ApplicationDestination{Server: a.ClusterServer, Namespace: namespace},
			SyncPolicy:  &v1alpha1.SyncPolicy{SyncOptions: v1alpha1.SyncOptions{"CreateNamespace=true"}}},
	}})
	if err != nil {
		return fmt.Errorf("creating Argo CD application %s: %w", name, err)
	}
	return nil
}

func installCRDs(ctx context.Context, dyn dynamic.Interface) error {
	for _, f := range []string{"application-crd.yaml", "appproject-crd.yaml"} {
		b, err := os.ReadFile(filepath.Join(crdDir(), f))
		if err != nil {
			return err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &obj.Object); err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		if _, err := dyn.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("installing %s: %w", f, err)
		}
	}
	return nil
}

var partOf = map[string]string{"app.kubernetes.io/part-of": "argocd"}

// bootstrap writes what Argo CD reads at start: its ConfigMaps and
// Secret (labelled, or Argo CD does not see them), the default project and
// the local cluster.
func bootstrap(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, c *cluster.Cluster, adminPassword string) error {
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]any{"bearerToken": c.Token, "tlsClientConfig": map[string]any{"insecure": true}})
	objects := []any{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: Namespace, Labels: partOf},
			Data: map[string]string{"accounts." + Account: "apiKey", "admin.enabled": "true", "timeout.reconciliation": "10s"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "argocd-rbac-cm", Namespace: Namespace, Labels: partOf},
			Data: map[string]string{"policy.csv": "g, " + Account + ", role:admin\n", "policy.default": "role:readonly"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret", Namespace: Namespace, Labels: partOf},
			StringData: map[string]string{"server.secretkey": randomString(32), "admin.password": string(hash),
				"admin.passwordMtime": time.Now().UTC().Format(time.RFC3339)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cluster-local", Namespace: Namespace,
			Labels: map[string]string{"argocd.argoproj.io/secret-type": "cluster"}},
			StringData: map[string]string{"name": "local", "server": c.Server, "config": string(cfg)}},
	}
	for _, o := range objects {
		var err error
		switch o := o.(type) {
		case *corev1.ConfigMap:
			_, err = kube.CoreV1().ConfigMaps(Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Secret:
			_, err = kube.CoreV1().Secrets(Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Argo CD's configuration: %w", err)
		}
	}
	project := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": "default", "namespace": Namespace},
		"spec": map[string]any{"sourceRepos": []any{"*"}, "destinations": []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}}}}}
	gvr := schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
	for range 100 { // the CRD was just created: wait until it is served
		_, err = dyn.Resource(gvr).Namespace(Namespace).Create(ctx, project, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("creating the default AppProject: %w", err)
}

func (a *ArgoCD) startProcesses(ctx context.Context, dir string, c *cluster.Cluster) error {
	ports := map[string]int{}
	for _, name := range []string{"redis", "repo", "repo-metrics", "controller-metrics", "server", "server-metrics"} {
		p, err := procs.FreePort()
		if err != nil {
			return err
		}
		ports[name] = p
	}
	redis := fmt.Sprintf("127.0.0.1:%d", ports["redis"])
	repo := fmt.Sprintf("127.0.0.1:%d", ports["repo"])
	a.Server = fmt.Sprintf("127.0.0.1:%d", ports["server"])
	// The repo-server runs git, and kustomize for kustomize apps.
	kustomizeDir := filepath.Join(tools.Dir(), "kustomize-"+tools.Version("KUSTOMIZE"))
	env := []string{"KUBECONFIG=" + c.Kubeconfig, "ARGOCD_GPG_ENABLED=false", "TMPDIR=" + dir, "ARGOCD_NAMESPACE=" + Namespace,
		"PATH=" + kustomizeDir + ":" + os.Getenv("PATH")}
	start := func(role string, args ...string) (*procs.Proc, error) {
		bin := filepath.Join(dir, "bin", role)
		if role != "redis-server" {
			os.Remove(bin)
			if err := os.Symlink(Binary(), bin); err != nil {
				return nil, err
			}
		} else if bin, _ = exec.LookPath("redis-server"); bin == "" {
			return nil, fmt.Errorf("redis-server not found")
		}
		p, err := procs.Start(role, filepath.Join(dir, role+".log"), bin, args, env)
		if err == nil {
			a.procs = append(a.procs, p)
		}
		return p, err
	}
	r, err := start("redis-server", "--port", fmt.Sprint(ports["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err != nil {
		return err
	}
	if err := r.WaitReady(ctx, 20*time.Second, "listening", dialable(redis)); err != nil {
		return err
	}
	// On loopback only (their default is every address): Pods reach the
	// API server through the node's relay (kubenode.Node.Expose) when a
	// test exposes it.
	rs, err := start("argocd-repo-server", "--redis", redis, "--address", "127.0.0.1", "--port", fmt.Sprint(ports["repo"]),
		"--metrics-address", "127.0.0.1", "--metrics-port", fmt.Sprint(ports["repo-metrics"]), "--disable-tls", "--loglevel", "warn")
	if err != nil {
		return err
	}
	if err := rs.WaitReady(ctx, 60*time.Second, "listening", dialable(repo)); err != nil {
		return err
	}
	if _, err := start("argocd-application-controller", "--namespace", Namespace, "--redis", redis, "--repo-server", repo,
		"--repo-server-plaintext", "--metrics-port", fmt.Sprint(ports["controller-metrics"]), "--app-resync", "30",
		"--loglevel", "warn"); err != nil {
		return err
	}
	srv, err := start("argocd-server", "--namespace", Namespace, "--insecure", "--address", "127.0.0.1", "--port", fmt.Sprint(ports["server"]),
		"--metrics-address", "127.0.0.1", "--metrics-port", fmt.Sprint(ports["server-metrics"]), "--redis", redis, "--repo-server", repo, "--repo-server-plaintext",
		"--loglevel", "warn")
	if err != nil {
		return err
	}
	return srv.WaitReady(ctx, 60*time.Second, "listening", dialable(a.Server))
}

// accountToken logs in as admin and makes an API token for Account.
func (a *ArgoCD) accountToken(ctx context.Context, dir string) (string, error) {
	opts := &apiclient.ClientOptions{ServerAddr: a.Server, PlainText: true, ConfigPath: filepath.Join(dir, "no-local-config")}
	var (
		sessionToken string
		lastErr      error
	)
	for range 100 { // the server listens a little before it answers logins
		client, err := apiclient.NewClient(opts)
		if err != nil {
			return "", err
		}
		closer, sessions, err := client.NewSessionClient()
		if err != nil {
			return "", err
		}
		resp, err := sessions.Create(ctx, &session.SessionCreateRequest{Username: "admin", Password: a.AdminPassword})
		closer.Close()
		if err == nil {
			sessionToken = resp.Token
			break
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	if sessionToken == "" {
		return "", fmt.Errorf("logging in to Argo CD as admin: %w", lastErr)
	}
	opts.AuthToken = sessionToken
	client, err := apiclient.NewClient(opts)
	if err != nil {
		return "", err
	}
	closer, accounts, err := client.NewAccountClient()
	if err != nil {
		return "", err
	}
	defer closer.Close()
	resp, err := accounts.CreateToken(ctx, &account.CreateTokenRequest{Name: Account, Id: "slipway-" + randomString(6)})
	if err != nil {
		return "", fmt.Errorf("making the %s account's token: %w", Account, err)
	}
	return resp.Token, nil
}

func dialable(addr string) func() bool {
	return func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
