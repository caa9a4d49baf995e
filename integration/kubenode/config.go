package kubenode

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/integration/procs"
)

// writeContainerdConfig writes a containerd config whose every path is
// the node's. The CRI plugin restricts oom_score_adj (these machines lack
// CAP_SYS_RESOURCE: runc cannot lower it), pulls from registry over plain
// HTTP and plugs Pods into the node's CNI network.
func (n *Node) writeContainerdConfig(pause, registry string) (string, error) {
	cni := filepath.Join(n.Dir, "cni")
	certs := filepath.Join(n.Dir, "containerd", "certs.d")
	if err := os.MkdirAll(filepath.Join(cni, "net.d"), 0o755); err != nil {
		return "", err
	}
	// The registry is plain HTTP, at its loopback address and at the
	// node's, where Expose makes it reachable from Pods.
	for _, host := range []string{registry, OnNode(registry)} {
		if err := os.MkdirAll(filepath.Join(certs, host), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(certs, host, "hosts.toml"), fmt.Appendf(nil, `server = "http://%s"

[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, host, host), 0o644); err != nil {
			return "", err
		}
	}
	// No default route and no masquerading: the Pods reach their subnet,
	// the Services (through this host), the away namespace's test hosts
	// and nothing else. IPv6 is off in the Pods: the network is IPv4's,
	// and so is the NetworkPolicy agent (link-local IPv6 between the
	// Pods of a bridge would pass it by).
	if err := os.WriteFile(filepath.Join(cni, "net.d", "10-slipway.conflist"), fmt.Appendf(nil, `{
  "cniVersion": "0.4.0",
  "name": "slipway",
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": false, "ipMasq": false, "hairpinMode": true,
    "ipam": {
      "type": "host-local", "dataDir": %q,
      "ranges": [[{"subnet": %q, "gateway": %q}]],
      "routes": [{"dst": %[5]q, "gw": %[4]q}, {"dst": %[6]q, "gw": %[4]q}, {"dst": %[7]q, "gw": %[4]q}]
    }
  }, {
    "type": "tuning", "sysctl": {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
  }]
}
`, Bridge, filepath.Join(cni, "ipam"), PodCIDR, Gateway, ServiceCIDR, Metadata+"/32", Internet+"/32"), 0o644); err != nil {
		return "", err
	}
	config := filepath.Join(n.Dir, "containerd.toml")
	return config, os.WriteFile(config, fmt.Appendf(nil, `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, filepath.Join(n.Dir, "containerd", "root"), filepath.Join(n.run, "state"), n.sock, n.sock+".ttrpc",
		pause, cniBin, filepath.Join(cni, "net.d"), certs), 0o644)
}

// writeKubeletConfig writes the kubelet's configuration: cgroup v1 and
// the cgroupfs driver (these machines), no swap check, the node's
// containerd, serving on the bridge address, authenticating the API
// server by the control plane's kubelet-client CA and everyone else by
// token review, no resolv.conf from the host but the node's cluster DNS
// (dns.go), and eviction only when the
// disk is really full.
func (n *Node) writeKubeletConfig(c *cluster.Cluster) (string, error) {
	ports, err := procs.FreePorts(2)
	if err != nil {
		return "", err
	}
	config := filepath.Join(n.Dir, "kubelet.yaml")
	return config, os.WriteFile(config, fmt.Appendf(nil, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
resolvConf: ""
clusterDNS: [%s]
clusterDomain: %s
serializeImagePulls: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, n.sock, n.IP, ports[0], ports[1], n.IP, ClusterDomain, c.KubeletClientCA), 0o644)
}
