// Package cluster starts a real Kubernetes control plane on loopback for
// tests and the demo: Debian's etcd, then kube-apiserver (token auth, RBAC,
// service-account keys made at start) and kube-controller-manager built
// from k8s.io/kubernetes by `make tools`. Pods run on the node agent
// (package nodeagent), which stands in for a kubelet and a scheduler, or,
// with Options.RealNode, on a real node (package kubenode).
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/stages/tools"
)

// Cluster is a running control plane.
type Cluster struct {
	Dir        string
	Server     string // https://127.0.0.1:PORT
	Token      string // a bearer token in system:masters
	Kubeconfig string // a kubeconfig file for clients outside Go
	// KubeletClientCA is the CA of the certificate the API server presents
	// to kubelets (Options.RealNode): a kubelet trusts clients it signed.
	KubeletClientCA string
	procs           []*procs.Proc
}

// Options shape the control plane.
type Options struct {
	// RealNode readies it for a real kubelet: the API server gets a
	// client certificate for kubelets (logs, exec) and reaches them at
	// their internal IP, and the node lifecycle controller runs (it lifts
	// a new node's not-ready taint).
	RealNode bool
	// Advertise is the address the `kubernetes` Service sends Pods to
	// (with the API server's port): the real node's, where its relay
	// leads to the API server on loopback (kubenode.Node.Expose). Empty:
	// 127.0.0.1, which no Pod reaches (Endpoints refuse loopback).
	Advertise string
}

// KubeBinary is the path of a pinned Kubernetes binary in the tools cache.
func KubeBinary(name string) string {
	return filepath.Join(tools.Dir(), "kubernetes-"+tools.Version("KUBERNETES"), name)
}

// Missing says which of the control plane's executables are not installed.
func Missing() []string {
	var out []string
	for _, p := range []string{KubeBinary("kube-apiserver"), KubeBinary("kube-controller-manager")} {
		if tools.Check(p) != nil {
			out = append(out, p+" (make tools)")
		}
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		out = append(out, "etcd (make tools installs Debian's etcd-server)")
	}
	return out
}

// Start brings up etcd, kube-apiserver and kube-controller-manager under
// dir. On error everything started is stopped again.
func Start(ctx context.Context, dir string, opts ...Options) (c *Cluster, err error) {
	var o Options
	for _, x := range opts {
		o = x
	}
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("the local cluster needs %v", m)
	}
	c = &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	etcd, err := c.startEtcd(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx, etcd, o); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}
	if err := c.startControllerManager(o); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(name string, bin string, args ...string) (*procs.Proc, error) {
	p, err := procs.Start(name, filepath.Join(c.Dir, name+".log"), bin, args, nil)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	client, err := procs.FreePort()
	if err != nil {
		return "", err
	}
	peer, err := procs.FreePort()
	if err != nil {
		return "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	p, err := c.start("etcd", "etcd", "--name", "slipway", "--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "slipway="+peerURL, "--log-level", "warn")
	if err != nil {
		return "", err
	}
	return url, p.WaitReady(ctx, 30*time.Second, "healthy", func() bool { return httpOK(nil, url+"/health", "") })
}

func (c *Cluster) startAPIServer(ctx context.Context, etcd string, o Options) error {
	port, err := procs.FreePort()
	if err != nil {
		return err
	}
	priv, pub, err := writeServiceAccountKeys(c.Dir)
	if err != nil {
		return err
	}
	c.Token = randomToken()
	tokens := filepath.Join(c.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(c.Token+",slipway-admin,slipway-admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", port)
	var kubelets []string
	if o.RealNode {
		ca, cert, key, err := writeKubeletClientCert(c.Dir)
		if err != nil {
			return err
		}
		c.KubeletClientCA = ca
		kubelets = []string{"--kubelet-client-certificate", cert, "--kubelet-client-key", key,
			"--kubelet-preferred-address-types", "InternalIP"}
	}
	p, err := c.start("kube-apiserver", KubeBinary("kube-apiserver"), append(kubelets,
		"--etcd-servers", etcd, "--bind-address", "127.0.0.1", "--advertise-address", cmp.Or(o.Advertise, "127.0.0.1"),
		"--secure-port", fmt.Sprint(port), "--cert-dir", filepath.Join(c.Dir, "certs"),
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", pub,
		"--service-account-signing-key-file", priv, "--token-auth-file", tokens,
		"--authorization-mode", "RBAC", "--service-cluster-ip-range", "10.96.0.0/16",
		"--enable-priority-and-fairness=false", "--profiling=false", "--v=1",
		// Watches straight from etcd: Debian's etcd (3.4) cannot tell the
		// watch cache how far it is, and a watch from a version the cache
		// has not seen yet waited and failed ("Too large resource version").
		"--watch-cache=false")...)
	if err != nil {
		return err
	}
	return p.WaitReady(ctx, 90*time.Second, "ready (/readyz)", func() bool { return httpOK(insecure, c.Server+"/readyz", c.Token) })
}

func (c *Cluster) writeKubeconfig() error {
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return os.WriteFile(c.Kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %q}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
`, c.Server, c.Token)), 0o600)
}

func (c *Cluster) startControllerManager(o Options) error {
	port, err := procs.FreePort()
	if err != nil {
		return err
	}
	controllers := "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle" // no kubelet renews a Lease
	if o.RealNode {
		controllers = "*,-nodeipam,-cloud-node-lifecycle"
	}
	_, err = c.start("kube-controller-manager", KubeBinary("kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port),
		"--service-account-private-key-file", filepath.Join(c.Dir, "sa.key"), "--use-service-account-credentials=false",
		// The CA Pods' service-account mounts carry (kube-root-ca.crt):
		// the API server's self-signed serving certificate and its CA.
		"--root-ca-file", filepath.Join(c.Dir, "certs", "apiserver.crt"),
		"--controllers="+controllers, "--leader-elect=false", "--v=1")
	return err
}

// NodeReady reports whether node name's Ready condition is true.
func NodeReady(ctx context.Context, kube kubernetes.Interface, name string) bool {
	n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Config is a client configuration for the cluster.
func (c *Cluster) Config() *rest.Config {
	return &rest.Config{Host: c.Server, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS: 100, Burst: 200}
}

// Client is a clientset for the cluster.
func (c *Cluster) Client() (*kubernetes.Clientset, error) { return kubernetes.NewForConfig(c.Config()) }

// Procs lists the processes the cluster runs, for logs and teardown checks.
func (c *Cluster) Procs() []*procs.Proc { return c.procs }

// Stop stops the control plane, newest process first.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(10 * time.Second)
	}
}

// Tails returns the last lines of every process's log, for failing tests.
func (c *Cluster) Tails(n int) string {
	var s string
	for _, p := range c.procs {
		s += fmt.Sprintf("--- %s (%s)\n%s\n", p.Name, p.Log, p.Tail(n))
	}
	return s
}

var insecure = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func httpOK(client *http.Client, url, token string) bool {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}
