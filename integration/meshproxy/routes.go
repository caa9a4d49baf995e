package meshproxy

import (
	"fmt"
	"math/rand"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// backend is where one request goes: a ready Pod and its port, and the
// workload it belongs to (for metrics).
type backend struct {
	addr      string
	workload  string
	namespace string
}

// destination is one weighted choice of a route.
type destination struct {
	service string            // Service name
	subset  map[string]string // extra Pod labels (Istio subset); nil for Gateway API
	port    int64             // 0: the Service's first port
	weight  int64
}

// snapshot is what the proxy reads to route: the informers' current objects.
type snapshot interface {
	list(kind string) []*unstructured.Unstructured
	services(ns string) []*corev1.Service
	pods(ns string) []*corev1.Pod
}

// route finds where a request for host goes. VirtualServices are tried
// first, then HTTPRoutes; the first HTTP route of the first object naming
// host wins, and a destination is drawn by weight.
func route(s snapshot, host string, rng *rand.Rand) (*backend, error) {
	name, ns := splitHost(host)
	for _, vs := range s.list("VirtualService") {
		if !hasHost(vs, "hosts", name, ns) {
			continue
		}
		dests, err := istioDestinations(s, vs)
		if err != nil {
			return nil, err
		}
		return pick(s, vs.GetNamespace(), dests, rng)
	}
	for _, hr := range s.list("HTTPRoute") {
		if !hasHost(hr, "hostnames", name, ns) {
			continue
		}
		return pick(s, hr.GetNamespace(), gatewayDestinations(hr), rng)
	}
	return nil, fmt.Errorf("no VirtualService or HTTPRoute routes host %q", host)
}

// splitHost turns order-service, order-service.shop or
// order-service.shop.svc.cluster.local (with or without :port) into name and namespace.
func splitHost(host string) (string, string) {
	if i := strings.LastIndex(host, ":"); i > 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	parts := strings.SplitN(host, ".", 3)
	if len(parts) >= 2 {
		return parts[0], parts[1]
	}
	return parts[0], ""
}

// hasHost reports whether obj routes name (in namespace ns, when the
// request said one): a listed host with the same short name whose
// namespace, explicit or the object's own, agrees.
func hasHost(obj *unstructured.Unstructured, field, name, ns string) bool {
	hosts, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", field)
	for _, h := range hosts {
		hn, hns := splitHost(h)
		if hns == "" {
			hns = obj.GetNamespace()
		}
		if hn == name && (ns == "" || hns == ns) {
			return true
		}
	}
	return false
}

func istioDestinations(s snapshot, vs *unstructured.Unstructured) ([]destination, error) {
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(routes) == 0 {
		return nil, fmt.Errorf("VirtualService %s has no http routes", vs.GetName())
	}
	first, _ := routes[0].(map[string]any)
	list, _, _ := unstructured.NestedSlice(first, "route")
	var out []destination
	for _, item := range list {
		m, _ := item.(map[string]any)
		host, _, _ := unstructured.NestedString(m, "destination", "host")
		subset, _, _ := unstructured.NestedString(m, "destination", "subset")
		port, _, _ := unstructured.NestedInt64(m, "destination", "port", "number")
		weight, found, _ := unstructured.NestedInt64(m, "weight")
		if !found {
			weight = 100
		}
		svc, _ := splitHost(host)
		d := destination{service: svc, port: port, weight: weight}
		if subset != "" {
			d.subset = subsetLabels(s, vs.GetNamespace(), svc, subset)
			if d.subset == nil {
				return nil, fmt.Errorf("no DestinationRule defines subset %s of %s", subset, svc)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func subsetLabels(s snapshot, ns, svc, subset string) map[string]string {
	for _, dr := range s.list("DestinationRule") {
		host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
		if hn, _ := splitHost(host); hn != svc || dr.GetNamespace() != ns {
			continue
		}
		subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		for _, item := range subsets {
			m, _ := item.(map[string]any)
			if m["name"] == subset {
				l, _, _ := unstructured.NestedStringMap(m, "labels")
				return l
			}
		}
	}
	return nil
}

func gatewayDestinations(hr *unstructured.Unstructured) []destination {
	rules, _, _ := unstructured.NestedSlice(hr.Object, "spec", "rules")
	if len(rules) == 0 {
		return nil
	}
	first, _ := rules[0].(map[string]any)
	refs, _, _ := unstructured.NestedSlice(first, "backendRefs")
	var out []destination
	for _, item := range refs {
		m, _ := item.(map[string]any)
		name, _, _ := unstructured.NestedString(m, "name")
		port, _, _ := unstructured.NestedInt64(m, "port")
		weight, found, _ := unstructured.NestedInt64(m, "weight")
		if !found {
			weight = 1
		}
		out = append(out, destination{service: name, port: port, weight: weight})
	}
	return out
}

// pick draws a destination by weight and a ready Pod behind it.
func pick(s snapshot, ns string, dests []destination, rng *rand.Rand) (*backend, error) {
	var total int64
	for _, d := range dests {
		total += max(d.weight, 0)
	}
	if total == 0 {
		return nil, fmt.Errorf("every destination has weight 0")
	}
	n := rng.Int63n(total)
	for _, d := range dests {
		if n < d.weight {
			return podFor(s, ns, d, rng)
		}
		n -= max(d.weight, 0)
	}
	return nil, fmt.Errorf("no destination drawn")
}

func podFor(s snapshot, ns string, d destination, rng *rand.Rand) (*backend, error) {
	var svc *corev1.Service
	for _, x := range s.services(ns) {
		if x.Name == d.service {
			svc = x
		}
	}
	if svc == nil {
		return nil, fmt.Errorf("no Service %s/%s", ns, d.service)
	}
	want := labels.Set(svc.Spec.Selector)
	sel := labels.SelectorFromSet(mergeLabels(want, d.subset))
	var ready []*corev1.Pod
	for _, p := range s.pods(ns) {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && sel.Matches(labels.Set(p.Labels)) && podReady(p) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return nil, fmt.Errorf("no ready Pod behind %s/%s %v", ns, d.service, d.subset)
	}
	p := ready[rng.Intn(len(ready))]
	return &backend{addr: fmt.Sprintf("%s:%d", p.Status.PodIP, targetPort(svc, d.port, p)), workload: workloadOf(p), namespace: ns}, nil
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort maps a Service port to the Pod's port (numbers, or names
// looked up in the Pod's containers).
func targetPort(svc *corev1.Service, port int64, p *corev1.Pod) int32 {
	for _, sp := range svc.Spec.Ports {
		if port != 0 && int64(sp.Port) != port {
			continue
		}
		if sp.TargetPort.IntVal != 0 {
			return sp.TargetPort.IntVal
		}
		if name := sp.TargetPort.StrVal; name != "" {
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == name {
						return cp.ContainerPort
					}
				}
			}
		}
		return sp.Port
	}
	return int32(port)
}

// workloadOf names a Pod's Deployment (its ReplicaSet without the hash),
// as Istio's destination_workload does.
func workloadOf(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Kind == "ReplicaSet" {
			if h := p.Labels["pod-template-hash"]; h != "" {
				return strings.TrimSuffix(o.Name, "-"+h)
			}
			return o.Name
		}
	}
	return p.Name
}
