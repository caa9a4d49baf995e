package kubenode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The machine-wide state a node changes, and how Stop puts it back.

// sysctls the kubelet (and kube-proxy) may set, restored on Stop.
var sysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops", "net/ipv4/conf/all/route_localnet"}

func readSysctls() (map[string]string, error) {
	saved := map[string]string{}
	for _, k := range sysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", k, err)
		}
		saved[k] = strings.TrimSpace(string(b))
	}
	return saved, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// setUpBridge creates the Pods' bridge with the node's address, lets it
// forward between its own ports (a Pod reaching a Service comes back
// through this host), and drops whatever would leave it for elsewhere.
// This host reaches the Services from the bridge's address, so that the
// Pods can answer it.
func setUpBridge() error {
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", Gateway + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
		{"route", "add", ServiceCIDR, "dev", Bridge, "src", Gateway},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+Bridge+"/forwarding", []byte("1"), 0o644); err != nil {
		return err
	}
	return run("iptables", guard("-I")...)
}

// guard is the FORWARD rule that keeps the Pods on their bridge. It is
// in the mangle table, which the kernel consults before the filter
// table: there the NetworkPolicy agent accepts what a policy allows,
// and an address on the internet is not the node's to reach.
func guard(op string) []string {
	return []string{"-t", "mangle", op, "FORWARD", "-i", Bridge, "!", "-o", Bridge, "-j", "DROP"}
}

// Stop deletes the node's Pods, stops its processes and puts the machine
// back as it was: no container, mount, cgroup, bridge, iptables chain or
// kernel setting of the node's is left.
func (n *Node) Stop() {
	if n.lock == nil {
		return
	}
	if len(n.procs) > 0 {
		n.drain(30 * time.Second)
	}
	for _, stop := range n.relays {
		stop()
	}
	if n.dns != nil {
		n.dns.stop()
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].Stop(10 * time.Second)
	}
	sweep()
	for k, v := range n.sysctls {
		os.WriteFile("/proc/sys/"+k, []byte(v), 0o644)
	}
	if n.run != "" {
		unmountUnder(n.run)
		os.RemoveAll(n.run)
	}
	unmountUnder(n.Dir)
	n.lock.Close()
	n.lock = nil
}

// drain deletes the Pods bound to the node and waits (bounded) until
// containerd runs none of them: the kubelet stops each sandbox, which
// also takes its network namespace and IP back.
func (n *Node) drain(within time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	unschedulable := []byte(`{"spec":{"unschedulable":true}}`)
	n.kube.CoreV1().Nodes().Patch(ctx, n.Name, "application/strategic-merge-patch+json", unschedulable, metav1.PatchOptions{})
	zero := int64(0)
	pods, err := n.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
	if err == nil {
		for _, p := range pods.Items {
			n.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
	}
	for ctx.Err() == nil {
		out, err := exec.CommandContext(ctx, "ctr", "--address", n.sock, "-n", "k8s.io", "tasks", "ls", "-q").Output()
		if err != nil || len(bytes.TrimSpace(out)) == 0 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sweep removes what a node leaves on the machine: the processes of its
// Pods (whatever is still in the kubelet's cgroups) and their shims, the
// cgroups, the kubelet's and kube-proxy's iptables chains, the guard
// rule, the away namespace, the NetworkPolicy agent's ipsets and the
// bridge. It is also run before a node starts, after one
// that was killed.
func sweep() {
	for range 20 {
		if killCgroups("/sys/fs/cgroup/pids/kubepods") == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range shims() {
		syscall.Kill(p, syscall.SIGKILL)
	}
	removeCgroups("kubepods")
	for _, tool := range []string{"iptables", "ip6tables"} {
		dropKubeChains(tool)
	}
	sweepAgentSets()
	for range 10 { // one guard per node started (and killed) before
		if run("iptables", guard("-D")...) != nil {
			break
		}
	}
	sweepAway()
	run("ip", "link", "del", Bridge)
}

// killCgroups kills every process in cgroup dir and below and returns
// how many there were.
func killCgroups(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
				n++
			}
		}
		return nil
	})
	return n
}

// shims lists the containerd shims of the node's containerds (their
// command line names a socket under /run/slw-node-).
func shims() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.HasPrefix(b, []byte("/usr/bin/containerd-shim")) && bytes.Contains(b, []byte("/run/slw-node-")) {
			out = append(out, pid)
		}
	}
	return out
}

// removeCgroups removes cgroup name (and everything below it) from every
// controller's hierarchy, deepest first.
func removeCgroups(name string) {
	controllers, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	for _, root := range controllers {
		var dirs []string
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			syscall.Rmdir(d)
		}
	}
}

// dropKubeChains removes every KUBE- chain and every rule jumping to one.
func dropKubeChains(tool string) {
	saved, err := exec.Command(tool + "-save").Output()
	if err != nil || !bytes.Contains(saved, []byte("KUBE-")) {
		return
	}
	var kept bytes.Buffer
	for line := range bytes.Lines(saved) {
		if !bytes.Contains(line, []byte("KUBE-")) {
			kept.Write(line)
		}
	}
	cmd := exec.Command(tool + "-restore")
	cmd.Stdin = &kept
	cmd.Run()
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
