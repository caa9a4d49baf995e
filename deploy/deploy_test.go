// Package deploy holds the manifests that run Slipway in a cluster (a
// kustomize base) and its monitoring (alerts, dashboard); these tests
// build and check them with the real tools.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server"
	"github.com/slipwayci/slipway/stages/tools"
)

// need finds a tool or skips the test — fails it under CI.
func need(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (make tools): %v", path, err)
		}
		t.Skipf("%s is missing (make tools)", path)
	}
	return path
}

type object struct {
	Kind     string
	Metadata struct {
		Name, Namespace string
	}
	Raw map[string]any
}

// build renders the base with the pinned kustomize.
func build(t *testing.T) []object {
	t.Helper()
	kustomize := need(t, filepath.Join(tools.Dir(), "kustomize-"+tools.Version("KUSTOMIZE"), "kustomize"))
	out, err := exec.Command(kustomize, "build", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var objs []object
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("kustomize's output: %v\n%s", err, doc)
		}
		if err := yaml.Unmarshal(doc, &o.Raw); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// The base holds what runs the engine and grants it only the stage Pods,
// their logs and Secrets in the build namespace: no cluster-wide role.
func TestBaseGrantsOnlyTheBuildNamespace(t *testing.T) {
	objs := build(t)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.Kind+"/"+o.Metadata.Namespace+"/"+o.Metadata.Name)
	}
	slices.Sort(kinds)
	got := strings.Join(kinds, " ")
	for _, want := range []string{"Namespace//slipway ", "Namespace//slipway-builds ", "ServiceAccount/slipway/slipway ",
		"ServiceAccount/slipway-builds/slipway-stage ", "Role/slipway-builds/slipway-stages ", "RoleBinding/slipway-builds/slipway-stages ",
		"Deployment/slipway/slipway ", "Service/slipway/slipway ", "PodDisruptionBudget/slipway/slipway ",
		"PersistentVolumeClaim/slipway/slipway-data ", "ConfigMap/slipway/slipway-config-",
		"Deployment/slipway/trivy ", "Service/slipway/trivy ", "PersistentVolumeClaim/slipway/trivy-db ",
		"LimitRange/slipway-builds/stage-pods ", "ResourceQuota/slipway-builds/stage-pods ", "NetworkPolicy/slipway-builds/default-deny ",
		"NetworkPolicy/slipway-builds/dns ", "NetworkPolicy/slipway-builds/registries-and-git-hosts "} {
		if !strings.Contains(got+" ", want) {
			t.Errorf("the base lacks %s: %s", strings.TrimSpace(want), got)
		}
	}
	for _, o := range objs {
		switch o.Kind {
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("the base grants cluster-wide: %s %s", o.Kind, o.Metadata.Name)
		case "Role":
			rules, _ := json.Marshal(o.Raw["rules"])
			if want := `[{"apiGroups":[""],"resources":["pods"],"verbs":["create","get","list","watch","delete"]},` +
				`{"apiGroups":[""],"resources":["pods/log"],"verbs":["get"]},` +
				`{"apiGroups":[""],"resources":["secrets"],"verbs":["create","get","list","update","delete"]}]`; string(rules) != want {
				t.Errorf("role %s grants %s", o.Metadata.Name, rules)
			}
		case "Deployment":
			spec, _ := json.Marshal(o.Raw["spec"])
			var d struct {
				Template struct {
					Spec struct {
						Containers []struct {
							ReadinessProbe, LivenessProbe struct{ HTTPGet struct{ Path string } }
						}
					}
				}
			}
			if err := json.Unmarshal(spec, &d); err != nil || len(d.Template.Spec.Containers) != 1 ||
				d.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path != "/healthz" || d.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("the Deployment's probes are not on /healthz (%v):\n%s", err, spec)
			}
			wants := []string{`"runAsNonRoot":true`, `"allowPrivilegeEscalation":false`, `"readOnlyRootFilesystem":true`}
			if o.Metadata.Name == "slipway" {
				wants = append(wants, `"name":"slipway-config-`, `"name":"SLIPWAY_TRIVY_TOKEN"`)
			}
			for _, want := range wants {
				if !strings.Contains(string(spec), want) {
					t.Errorf("the Deployment lacks %s:\n%s", want, spec)
				}
			}
		}
	}
}

// The build namespace enforces Pod Security baseline, sizes every
// container within what the engine lets a pushed pipeline ask, and lets
// its Pods reach DNS and the internet's registries and git hosts only:
// no address of the cluster or a private network, no link-local metadata.
func TestTheBuildNamespaceHasGuardrails(t *testing.T) {
	objs := build(t)
	find := func(kind, name string) map[string]any {
		for _, o := range objs {
			if o.Kind == kind && o.Metadata.Name == name {
				return o.Raw
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return nil
	}
	field := func(o map[string]any) string { b, _ := json.Marshal(o); return string(b) }
	if ns := field(find("Namespace", "slipway-builds")); !strings.Contains(ns, `"pod-security.kubernetes.io/enforce":"baseline"`) {
		t.Errorf("the build namespace does not enforce Pod Security baseline: %s", ns)
	}
	limits := pipeline.DefaultLimits
	if lr := field(find("LimitRange", "stage-pods")); !strings.Contains(lr, fmt.Sprintf(`"max":{"cpu":%q,"ephemeral-storage":%q,"memory":%q}`, limits.MaxCPU, limits.MaxDisk, limits.MaxMemory)) {
		t.Errorf("the LimitRange's max is not the engine's default limits (%s, %s, %s): %s", limits.MaxCPU, limits.MaxMemory, limits.MaxDisk, lr)
	}
	if deny := field(find("NetworkPolicy", "default-deny")); deny != `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"labels":{"app.kubernetes.io/name":"slipway","app.kubernetes.io/part-of":"slipway"},"name":"default-deny","namespace":"slipway-builds"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}` {
		t.Errorf("default-deny = %s", deny)
	}
	var policy struct {
		Spec struct {
			Egress []struct {
				To []struct {
					IPBlock struct {
						CIDR   string
						Except []string
					} `json:"ipBlock"`
				}
				Ports []struct{ Port int }
			}
		}
	}
	raw, _ := json.Marshal(find("NetworkPolicy", "registries-and-git-hosts"))
	if err := json.Unmarshal(raw, &policy); err != nil {
		t.Fatal(err)
	}
	reaches := func(addr string, port int) bool {
		ip := netip.MustParseAddr(addr)
		for _, e := range policy.Spec.Egress {
			if !slices.ContainsFunc(e.Ports, func(p struct{ Port int }) bool { return p.Port == port }) {
				continue
			}
			for _, to := range e.To {
				if !netip.MustParsePrefix(to.IPBlock.CIDR).Contains(ip) ||
					slices.ContainsFunc(to.IPBlock.Except, func(c string) bool { return netip.MustParsePrefix(c).Contains(ip) }) {
					continue
				}
				return true
			}
		}
		return false
	}
	for _, blocked := range []struct {
		what string
		addr string
		port int
	}{
		{"link-local metadata", "169.254.169.254", 80}, {"link-local metadata over https", "169.254.169.254", 443},
		{"the API server's Service", "10.96.0.1", 443}, {"a node's API server", "192.168.1.10", 443},
		{"a Pod (the engine, the Trivy server)", "10.244.1.7", 443}, {"a Docker bridge", "172.17.0.2", 443},
		{"carrier-grade NAT", "100.64.0.1", 443}, {"loopback", "127.0.0.1", 443}, {"IPv6 unique-local", "fd00::1", 443},
		{"IPv6 link-local", "fe80::1", 443}, {"a host on the internet, on another port", "93.184.216.34", 2375},
	} {
		if reaches(blocked.addr, blocked.port) {
			t.Errorf("stage Pods may reach %s (%s:%d)", blocked.what, blocked.addr, blocked.port)
		}
	}
	for _, allowed := range []string{"93.184.216.34", "2606:2800:220:1::248"} {
		if !reaches(allowed, 443) || !reaches(allowed, 22) {
			t.Errorf("stage Pods cannot reach %s on 443 and 22", allowed)
		}
	}
}

// The engine config the base ships is one `slipway serve` accepts.
func TestEngineConfigIsValid(t *testing.T) {
	t.Parallel()
	if _, err := engineconfig.Load("slipway.yaml"); err != nil {
		t.Fatal(err)
	}
}

// The alerts are valid Prometheus rules and fire (only) when they should:
// promtool's own check and rule unit tests.
func TestAlertsAreValidAndFire(t *testing.T) {
	t.Parallel()
	promtool := need(t, "/usr/bin/promtool")
	raw, err := os.ReadFile("monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	rules, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests, err := os.ReadFile("monitoring/rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"rules.yaml": rules, "rules_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`slipway_[a-z_]+`)

// oneOfEach is what the metrics read from the store at a scrape: one run
// and one rollback, so that every metric has a series.
type oneOfEach struct{}

func (oneOfEach) CountRuns(context.Context, []string) (map[store.RunStatus]int, error) {
	return map[store.RunStatus]int{store.RunQueued: 1}, nil
}

func (oneOfEach) CountRollbacks(context.Context) ([]store.RollbackCount, error) {
	return []store.RollbackCount{{App: "order-service", Trigger: "analysis", N: 1}}, nil
}

// Every metric the dashboard and the alerts query is one the engine
// exports (read from its /metrics after one of each event).
func TestDashboardAndAlertsQueryTheEngineMetrics(t *testing.T) {
	t.Parallel()
	m := server.NewMetrics(oneOfEach{})
	m.StageFinished("build", store.StageSucceeded, 1)
	m.RunFinished(store.RunSucceeded)
	m.Webhook("github", "ok")
	m.CommitStatus("github", "ok")
	m.LogLinesDropped(1)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	exported := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
		}
	}
	dash, err := os.ReadFile("monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	alerts, err := os.ReadFile("monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	queried := map[string]string{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				queried[n] = "panel " + p.Title
			}
		}
	}
	for _, n := range metricName.FindAllString(string(alerts), -1) {
		queried[n] = "the alerts"
	}
	for n, where := range queried {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !exported[base] {
			t.Errorf("%s queries %s, which the engine does not export (it has %v)", where, n, exported)
		}
	}
}
