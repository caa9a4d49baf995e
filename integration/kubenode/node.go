// Package kubenode runs a real Kubernetes node beside the local control
// plane (package cluster): Debian's containerd and runc — a containerd of
// its own, whose config, root, state and socket are the node's, never the
// system's — a CNI bridge for the Pods, the kubelet, kube-proxy and
// kube-scheduler of the pinned Kubernetes build, and a NetworkPolicy agent
// (netpolicy.go), so that policies are enforced as on a real cluster.
//
// The Pods are the project's own test hosts on this machine: their bridge
// has no default route and no NAT, and a FORWARD rule drops whatever tries
// to leave it, so they reach each other, their Services, this host and
// the test hosts of the away namespace (away.go: the API server's relay
// and a metadata address, off the node), and nothing beyond. The kubelet's and kube-proxy's iptables chains and the
// kernel settings the kubelet changes are machine-wide, so one node runs
// on a machine at a time (a lock) and Stop puts them back as they were.
package kubenode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/integration/procs"
	"github.com/slipwayci/slipway/stages/tools"
)

// The node's network: Pods on PodCIDR behind Bridge, whose address
// (Gateway) is the node's IP; Services on the control plane's range.
const (
	Bridge      = "slwnode0"
	Gateway     = "10.244.0.1"
	PodCIDR     = "10.244.0.0/24"
	ServiceCIDR = "10.96.0.0/16" // cluster.Start's --service-cluster-ip-range
	Name        = "slipway-node"
)

// lockPath serializes nodes across the machine's test processes.
const lockPath = "/run/slipway-kubenode.lock"

// Node is a running node.
type Node struct {
	Name string
	IP   string
	Dir  string

	run     string // short paths for sockets and runtime state (/run/slw-node-…)
	sock    string // containerd's
	kube    *kubernetes.Clientset
	procs   []*procs.Proc
	kubelet *procs.Proc
	lock    *os.File
	sysctls map[string]string
	relays  []func() // Expose's, stopped with the node
	dns     *dnsServer
}

// Missing says which executables the node needs and does not find.
func Missing() []string {
	var out []string
	for _, bin := range []string{"containerd", "runc", "iptables", "iptables-save", "iptables-restore", "conntrack", "ctr", "ip", "ipset"} {
		if _, err := exec.LookPath(bin); err != nil {
			out = append(out, bin+" (make tools installs Debian's containerd, runc, iptables, conntrack, iproute2, ipset)")
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBin, plugin)); err != nil {
			out = append(out, filepath.Join(cniBin, plugin)+" (make tools installs Debian's containernetworking-plugins)")
		}
	}
	for _, bin := range []string{"kubelet", "kube-proxy", "kube-scheduler"} {
		if p := cluster.KubeBinary(bin); tools.Check(p) != nil {
			out = append(out, p+" (make tools)")
		}
	}
	if tools.Check(agentBinary()) != nil {
		out = append(out, agentBinary()+" (make tools)")
	}
	return out
}

const cniBin = "/usr/lib/cni"

// Start brings a node up under dir for control plane c (started with
// cluster.Options{RealNode: true, Advertise: ControlPlane}), with pause as the Pods' sandbox image and
// registry (host:port, plain HTTP) as the registry images are pulled
// from. It waits for the node to be Ready. On error everything started
// is stopped again.
func Start(ctx context.Context, dir string, c *cluster.Cluster, pause, registry string) (*Node, error) {
	if m := Missing(); len(m) > 0 {
		return nil, fmt.Errorf("a real node needs %v", m)
	}
	if c.KubeletClientCA == "" {
		return nil, errors.New("a real node needs a control plane started with cluster.Options{RealNode: true}")
	}
	kube, err := c.Client()
	if err != nil {
		return nil, err
	}
	lock, err := takeLock(ctx, 30*time.Minute) // the demo's test and the integration tests run at once, each holding it for minutes
	if err != nil {
		return nil, err
	}
	n := &Node{Name: Name, IP: Gateway, Dir: dir, kube: kube, lock: lock}
	if err := n.bringUp(ctx, c, pause, registry); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) bringUp(ctx context.Context, c *cluster.Cluster, pause, registry string) (err error) {
	sweep() // what a node killed before its Stop left behind
	if n.sysctls, err = readSysctls(); err != nil {
		return err
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	if n.run, err = os.MkdirTemp("/run", "slw-node-"); err != nil {
		return err
	}
	n.sock = filepath.Join(n.run, "containerd.sock")
	if err := setUpBridge(); err != nil {
		return fmt.Errorf("setting up the Pod bridge: %w", err)
	}
	if err := setUpAway(); err != nil {
		return fmt.Errorf("setting up the hosts off the node: %w", err)
	}
	// Pods reach the API server through the kubernetes Service, whose
	// endpoint (cluster.Options.Advertise: ControlPlane) is this relay,
	// off the node as on a cluster whose control plane runs on machines of
	// its own.
	if _, err := n.ExposeAway(ControlPlane, strings.TrimPrefix(c.Server, "https://")); err != nil {
		return err
	}
	if n.dns, err = startDNS(n.kube, n.IP); err != nil {
		return fmt.Errorf("starting the cluster DNS: %w", err)
	}
	if err := n.startContainerd(ctx, pause, registry); err != nil {
		return err
	}
	if err := n.startKubelet(ctx, c); err != nil {
		return err
	}
	// The agent before kube-proxy: it rewrites the whole filter table at
	// each sync (iptables-restore), and one that ran while kube-proxy made
	// its first chains took one away, which left the Services without
	// rules for kube-proxy's 30 s retry.
	if err := n.enforceNetworkPolicies(ctx, c); err != nil {
		return err
	}
	if err := n.startProxyAndScheduler(c); err != nil {
		return err
	}
	if err := n.waitReady(ctx, time.Minute); err != nil {
		return err
	}
	return n.kubelet.WaitReady(ctx, time.Minute, "kube-proxy's rules for the kubernetes Service", func() bool {
		return strings.Contains(iptablesSave(ctx, "nat"), "default/kubernetes:https")
	})
}

// takeLock waits (bounded) for the machine's node lock.
func takeLock(ctx context.Context, within time.Duration) (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the node lock: %w", err)
	}
	deadline := time.Now().Add(within)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another local node held %s for %s", lockPath, within)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return f, nil
}

func (n *Node) start(name, bin string, args ...string) (*procs.Proc, error) {
	p, err := procs.Start(name, filepath.Join(n.Dir, name+".log"), bin, args, nil)
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, p)
	return p, nil
}

func (n *Node) startContainerd(ctx context.Context, pause, registry string) error {
	config, err := n.writeContainerdConfig(pause, registry)
	if err != nil {
		return err
	}
	p, err := n.start("containerd", "containerd", "--config", config)
	if err != nil {
		return err
	}
	// Its gRPC server answers before the CRI plugin has initialized, and a
	// kubelet whose first CRI call fails exits: wait for a CRI answer.
	conn, err := grpc.NewClient("unix://"+n.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	cri := runtimeapi.NewRuntimeServiceClient(conn)
	return p.WaitReady(ctx, 30*time.Second, "its CRI runtime service answering on "+n.sock, func() bool {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cri.Status(callCtx, &runtimeapi.StatusRequest{})
		return err == nil
	})
}

func (n *Node) startKubelet(ctx context.Context, c *cluster.Cluster) error {
	config, err := n.writeKubeletConfig(c)
	if err != nil {
		return err
	}
	// Under the short run directory: the kubelet makes unix sockets below
	// its root (pod-resources, plugins), and a socket's path must fit in
	// 108 bytes, which a test's temporary directory need not.
	root := filepath.Join(n.run, "kubelet")
	p, err := n.start("kubelet", cluster.KubeBinary("kubelet"), "--config", config, "--kubeconfig", c.Kubeconfig,
		"--hostname-override", n.Name, "--node-ip", n.IP, "--root-dir", root, "--cert-dir", filepath.Join(root, "pki"), "--v=1")
	if err != nil {
		return err
	}
	n.kubelet = p
	return p.WaitReady(ctx, 60*time.Second, "the Node object registered", func() bool {
		_, err := n.kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil
	})
}

func (n *Node) startProxyAndScheduler(c *cluster.Cluster) error {
	ports, err := procs.FreePorts(3)
	if err != nil {
		return err
	}
	if _, err := n.start("kube-scheduler", cluster.KubeBinary("kube-scheduler"), "--kubeconfig", c.Kubeconfig,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(ports[0]), "--v=1"); err != nil {
		return err
	}
	_, err = n.start("kube-proxy", cluster.KubeBinary("kube-proxy"), "--kubeconfig", c.Kubeconfig,
		"--hostname-override", n.Name, "--proxy-mode", "iptables", "--cluster-cidr", PodCIDR,
		"--nodeport-addresses", n.IP+"/32", "--conntrack-max-per-core", "0",
		"--healthz-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[2]), "--v=1")
	return err
}

// waitReady waits for the node's Ready condition.
func (n *Node) waitReady(ctx context.Context, within time.Duration) error {
	return n.kubelet.WaitReady(ctx, within, "the node Ready", func() bool { return cluster.NodeReady(ctx, n.kube, n.Name) })
}

// Procs lists the node's processes, for logs and teardown checks.
func (n *Node) Procs() []*procs.Proc { return n.procs }

// Tails returns the last lines of every process's log, for failing tests.
func (n *Node) Tails(lines int) string {
	var s string
	for _, p := range n.procs {
		s += fmt.Sprintf("--- %s (%s)\n%s\n", p.Name, p.Log, p.Tail(lines))
	}
	return s
}
