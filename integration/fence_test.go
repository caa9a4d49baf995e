package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/integration/kubenode"
	"github.com/slipwayci/slipway/internal/eventually"
)

// reachProbe is a Pod's shell script: how many IPv6 addresses the Pod
// has ("ipv6 addresses: N"), then rounds of probes, each "round N AT"
// where AT is when it began (the kernel's uptime in seconds, the same
// clock inside the Pod and on the node), then for each URL it is given
// one line, "reached URL" when a server answered (any HTTP status), else
// "blocked URL: what wget said" (a dropped connection is given up after
// 3 s; busybox's own wget -T crashes), then "end N".
const reachProbe = `echo "ipv6 addresses: $(cat /proc/net/if_inet6 2>/dev/null | wc -l)"
for r in $(seq 1 100); do
  echo "round $r $(cut -d ' ' -f 1 /proc/uptime)"
  for u in "$@"; do
    if out=$(timeout 3 wget -q -O /dev/null "$u" 2>&1) || echo "$out" | grep -q 'HTTP/'; then echo "reached $u"; else echo "blocked $u: ${out:-no answer in 3 s}"; fi
  done
  echo "end $r"
done`

// reachFrom runs the probe in a Pod of namespace ns (image: a busybox)
// and returns what it found for each URL in its first round that began
// after the node's agent put the policies selecting it in force (any
// round when none does: fenced false).
func reachFrom(t *testing.T, lc *localCluster, ns, image string, fenced bool, urls []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	name := "reach-probe"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: new(bool),
			Containers: []corev1.Container{{Name: "probe", Image: image, Command: append([]string{"/bin/sh", "-c", reachProbe, "probe"}, urls...)}}},
	}
	_, err := lc.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	must(t, err)
	defer lc.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	logs := func() string {
		out, _ := lc.client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
		return string(out)
	}
	since := -1.0 // any round
	if fenced {
		var ip string
		eventually.True(t, time.Minute, "the probe in "+ns+" to have an address", func() bool {
			p, err := lc.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				ip = p.Status.PodIP
			}
			return ip != ""
		})
		eventually.True(t, 2*time.Minute, "the NetworkPolicy agent to judge the probe in "+ns+" at "+ip, func() bool {
			return lc.Node.PolicyInForce(ctx, ns, name, ip)
		})
		// A round that had begun before is not the policies' to judge —
		// told by the clock, not by the log, which the Pod writes a moment
		// after the round begins.
		since = uptime(t)
	}
	var round, out string
	eventually.True(t, 3*time.Minute, "the probe in "+ns+" to finish a round begun after "+fmt.Sprint(since), func() bool {
		out = logs()
		round = firstRoundAfter(out, since)
		return round != "" && strings.Contains(out, "end "+round+"\n")
	})
	_, rest, _ := strings.Cut(out, "round "+round+" ")
	_, rest, _ = strings.Cut(rest, "\n")
	rest, _, _ = strings.Cut(rest, "end "+round+"\n")
	found := map[string]string{}
	for line := range strings.Lines(rest) {
		verdict, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		url, said, _ := strings.Cut(rest, ": ")
		found[url] = strings.TrimSpace(verdict + " " + said)
	}
	for _, u := range urls {
		if found[u] == "" {
			t.Fatalf("the probe in %s said nothing of %s in round %s:\n%s", ns, u, round, out)
		}
	}
	// None: link-local IPv6 would reach the node's other Pods past an
	// agent that enforces IPv4.
	if !strings.Contains(out, "ipv6 addresses: 0\n") {
		t.Errorf("the probe in %s has IPv6 addresses:\n%s", ns, out)
	}
	return found
}

// firstRoundAfter is the number of the probe's first round that began
// after since (seconds of uptime), "" while there is none.
func firstRoundAfter(out string, since float64) string {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "round" {
			continue
		}
		if at, err := strconv.ParseFloat(f[2], 64); err == nil && at > since {
			return f[1]
		}
	}
	return ""
}

// uptime is the kernel's uptime in seconds, the clock the probe's rounds
// are stamped with.
func uptime(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/uptime")
	must(t, err)
	f := strings.Fields(string(b))
	if len(f) == 0 {
		t.Fatalf("/proc/uptime says %q", b)
	}
	at, err := strconv.ParseFloat(f[0], 64)
	must(t, err)
	return at
}

// serveAway serves a fixed answer at host:port of the node's away
// namespace (kubenode.Metadata, kubenode.Internet) until the test ends.
func serveAway(t *testing.T, lc *localCluster, host string, port int, answer string) string {
	t.Helper()
	ln, err := lc.Node.ListenAway(net.JoinHostPort(host, fmt.Sprint(port)))
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, answer) }),
		ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("http://%s:%d/", host, port)
}

// checkBuildFence probes, from the build namespace deploy/ ships and from
// a namespace without policies, what a stage Pod must not reach — the
// engine's and the Trivy server's Services, the API server (off the
// node, kubenode.ControlPlane, through the kubernetes Service) and a
// metadata service — and what it may: a host on the internet on 443, not
// on another port. The other namespace reaches all of them, so what the
// build Pod cannot reach is the policies' doing, enforced by the node's
// agent.
func checkBuildFence(t *testing.T, lc *localCluster, engine, trivy string) {
	metadata := serveAway(t, lc, kubenode.Metadata, 80, "instance-id: i-0123456789")
	https := serveAway(t, lc, kubenode.Internet, 443, "a registry")
	other := serveAway(t, lc, kubenode.Internet, 2375, "a docker daemon")
	api := "http://10.96.0.1:443/" // plain HTTP to the TLS port: a 400 says it was reached
	urls := []string{engine + "/healthz", trivy + "/healthz", api, metadata, https, other}
	blocked := map[string]bool{engine + "/healthz": true, trivy + "/healthz": true, api: true, metadata: true, other: true}

	open := reachFrom(t, lc, "default", lc.PodBase, false, urls)
	for _, u := range urls {
		if !strings.HasPrefix(open[u], "reached") {
			t.Errorf("a Pod without policies did not reach %s: %s", u, open[u])
		}
	}
	fenced := reachFrom(t, lc, "slipway-builds", lc.PodBase, true, urls)
	for _, u := range urls {
		if got := strings.HasPrefix(fenced[u], "blocked"); got != blocked[u] {
			t.Errorf("a stage Pod in slipway-builds, %s: %s", u, fenced[u])
		}
	}
	t.Logf("a stage Pod in slipway-builds: %v", fenced)
}

// The round judged is the first stamped after the policies were in
// force, whatever the log had shown when they came in.
func TestFirstRoundAfter(t *testing.T) {
	out := "ipv6 addresses: 0\nround 1 100.50\nreached a\nend 1\nround 2 100.61\nreached a\nend 2\nround 3 100.62\n"
	for since, want := range map[float64]string{-1: "1", 100.50: "2", 100.61: "3", 100.62: ""} {
		if got := firstRoundAfter(out, since); got != want {
			t.Errorf("firstRoundAfter(%v) = %q, want %q", since, got, want)
		}
	}
}
