package kubenode

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayci/slipway/integration/cluster"
	"github.com/slipwayci/slipway/stages/tools"
)

// The node enforces NetworkPolicy as a cluster's network plugin would:
// kube-router's network policy controller (its firewall only: no routing,
// no service proxy) runs on the node beside kube-proxy, the way k3s runs
// it. It keeps an iptables chain and ipsets for every local Pod a policy
// selects and judges each new connection to or from such a Pod — to
// another Pod, to an address off the node, and to the node itself.

const agentName = "kube-router"

// agentBinary is the pinned agent `make tools` builds.
func agentBinary() string {
	return filepath.Join(tools.Dir(), agentName+"-"+tools.Version("KUBE_ROUTER"), agentName)
}

// enforceNetworkPolicies starts the agent and waits until its chains are
// in place: from then on a Pod a policy selects gets its chain before
// its first packet is judged (PolicyInForce says when).
func (n *Node) enforceNetworkPolicies(ctx context.Context, c *cluster.Cluster) error {
	p, err := n.start(agentName, agentBinary(), "--kubeconfig", c.Kubeconfig, "--hostname-override", n.Name,
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--run-loadbalancer=false",
		"--enable-cni=false", "--enable-ipv6=false", "--service-cluster-ip-range", ServiceCIDR,
		// No listeners: health and metrics would bind every address.
		"--health-port=0", "--metrics-port=0", "--v=1")
	if err != nil {
		return err
	}
	return p.WaitReady(ctx, time.Minute, "its iptables chains (KUBE-ROUTER-FORWARD)", func() bool {
		return strings.Contains(iptablesSave(ctx, "filter"), ":KUBE-ROUTER-FORWARD")
	})
}

// PolicyInForce says whether the agent judges the traffic of Pod ns/name
// (which some policy selects) at address ip: the forwarded traffic goes
// through the agent's chain, and that chain sends what ip sends to the
// Pod's own. (The Pod's chain alone is not enough: a chain left from an
// earlier Pod of the same name would say so too early.)
func (n *Node) PolicyInForce(ctx context.Context, ns, name, ip string) bool {
	var forward, pod bool
	for line := range strings.Lines(iptablesSave(ctx, "filter")) {
		switch {
		case strings.HasPrefix(line, "-A FORWARD ") && strings.Contains(line, "-j KUBE-ROUTER-FORWARD"):
			forward = true
		case strings.HasPrefix(line, "-A KUBE-ROUTER-FORWARD ") && strings.Contains(line, "name:"+name+" namespace: "+ns+" ") &&
			strings.Contains(line, " -s "+ip+"/32 "):
			pod = true
		}
	}
	return forward && pod
}

// iptablesSave is the rules of one iptables table, as iptables-save
// writes them ("" when it cannot).
func iptablesSave(ctx context.Context, table string) string {
	out, _ := exec.CommandContext(ctx, "iptables-save", "-t", table).Output()
	return string(out)
}

// sweepAgentSets destroys the ipsets the agent leaves (once no rule
// refers to them: after dropKubeChains).
func sweepAgentSets() {
	out, err := exec.Command("ipset", "list", "-n").Output()
	if err != nil {
		return
	}
	for line := range bytes.Lines(out) {
		name := string(bytes.TrimSpace(line))
		if strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "kube-router-") || strings.HasPrefix(name, "inet6:KUBE-") {
			run("ipset", "destroy", name)
		}
	}
}
