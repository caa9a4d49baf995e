package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/slipwayci/slipway/integration/loadgen"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/integration/meshproxy"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/analysis"
)

// The order-service example: two subsets behind one VirtualService.
func orderServiceRouting(ns string, v1, v2 int) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{
		{Object: map[string]any{"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
			"metadata": map[string]any{"name": "order-service", "namespace": ns},
			"spec": map[string]any{"host": "order-service", "subsets": []any{
				map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
				map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}}}}}},
		virtualService(ns, v1, v2),
	}
}

func virtualService(ns string, v1, v2 int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "order-service", "namespace": ns},
		"spec": map[string]any{"hosts": []any{"order-service"}, "http": []any{map[string]any{"route": []any{
			map[string]any{"destination": map[string]any{"host": "order-service", "subset": "v1"}, "weight": int64(v1)},
			map[string]any{"destination": map[string]any{"host": "order-service", "subset": "v2"}, "weight": int64(v2)}}}}}}}
}

func orderService() *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "order-service"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "order-service"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
}

func countVersions(r loadgen.Result) (v1, v2 int) {
	for body, n := range r.Bodies {
		switch {
		case strings.HasPrefix(body, "order-service v1"):
			v1 += n
		case strings.HasPrefix(body, "order-service v2"):
			v2 += n
		}
	}
	return v1, v2
}

func promQuery(t *testing.T, url, q string) (float64, bool) {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	must(t, err)
	v, _, _, err := promv1.NewAPI(c).Query(context.Background(), q, time.Now())
	if err != nil {
		return 0, false
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, false
	}
	return float64(vec[0].Value), true
}

// canarySuccessRate measures the builtin request-success-rate metric (Flagger's
// Istio query, as the canary's analysis runs it) against a real Prometheus;
// -1 when the measurement is not a plain pass or fail.
func canarySuccessRate(t *testing.T, url, ns, workload string) float64 {
	t.Helper()
	p, err := analysis.NewPrometheus(url)
	must(t, err)
	min := 99.0
	m := analysis.Measure(context.Background(), p, pipeline.Metric{Name: "success-rate", Builtin: "request-success-rate", Min: &min},
		analysis.Target{Namespace: ns, Canary: workload, Interval: "1m"}, 1)
	if m.Outcome != analysis.Pass && m.Outcome != analysis.Fail {
		return -1
	}
	return m.Value
}

// The mesh proxy splits traffic by the VirtualService's weights, Prometheus
// scrapes its Istio-named metrics, and a weight change moves the split.
func TestMeshProxySplitsTrafficByWeight(t *testing.T) {
	onNode(t)
	lc := startLocalCluster(t, localenv.Options{Mesh: true})
	ctx := context.Background()
	dyn, proxy, prom := lc.Dynamic, lc.Proxy, lc.Prometheus
	for _, v := range []string{"v1", "v2"} {
		image := pushDemoImage(t, lc.reg, "shop/order-service:"+v, v, 0, 0)
		_, err := lc.client.AppsV1().Deployments("default").Create(ctx, demoDeployment("order-service-"+v, v, image), metav1.CreateOptions{})
		must(t, err)
	}
	_, err := lc.client.CoreV1().Services("default").Create(ctx, orderService(), metav1.CreateOptions{})
	must(t, err)
	for _, obj := range orderServiceRouting("default", 90, 10) {
		gvr := meshproxy.DestinationRules
		if obj.GetKind() == "VirtualService" {
			gvr = meshproxy.VirtualServices
		}
		_, err := dyn.Resource(gvr).Namespace("default").Create(ctx, obj, metav1.CreateOptions{})
		must(t, err)
	}
	lc.waitAvailable(t, "default", "order-service-v1")
	lc.waitAvailable(t, "default", "order-service-v2")

	res := loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-service.default", 400, 2500*time.Millisecond)
	v1, v2 := countVersions(res)
	// 1000 draws at p=0.1: mean 100, sd 9.5; 60..140 is ±4 sd.
	if res.Sent != 1000 || res.Codes[200] != 1000 || v1+v2 != 1000 || v2 < 60 || v2 > 140 {
		pods, _ := lc.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			t.Logf("pod %s ip %s phase %s conditions %+v deleting %v", p.Name, p.Status.PodIP, p.Status.Phase, p.Status.Conditions, p.DeletionTimestamp)
		}
		t.Fatalf("90/10 split: sent %d, codes %v, v1 %d, v2 %d, errors %d, answers %v", res.Sent, res.Codes, v1, v2, res.Errors, res.Bodies)
	}
	waitFor(t, "Prometheus to report the canary's success rate", func() bool {
		return canarySuccessRate(t, prom.URL, "default", "order-service-v2") == 100
	})
	// The p99 from the duration histogram's bucket increases, on the real Prometheus.
	p, err := analysis.NewPrometheus(prom.URL)
	must(t, err)
	limit := 250.0
	p99 := analysis.Measure(ctx, p, pipeline.Metric{Name: "latency", Builtin: "request-duration", Max: &limit},
		analysis.Target{Namespace: "default", Canary: "order-service-v2", Interval: "1m"}, 1)
	if p99.Outcome != analysis.Pass || p99.Value <= 0 || p99.Requests < 1 { // the last scrape may lag the load: some of its requests counted
		t.Errorf("the canary's p99: %+v", p99)
	}

	vs, err := dyn.Resource(meshproxy.VirtualServices).Namespace("default").Get(ctx, "order-service", metav1.GetOptions{})
	must(t, err)
	vs.Object["spec"] = virtualService("default", 50, 50).Object["spec"]
	_, err = dyn.Resource(meshproxy.VirtualServices).Namespace("default").Update(ctx, vs, metav1.UpdateOptions{})
	must(t, err)
	waitFor(t, "the proxy to apply the new weights", func() bool {
		_, v2 := countVersions(loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-service", 200, 500*time.Millisecond))
		return v2 >= 30
	})
	res = loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-service", 400, 2500*time.Millisecond)
	v1, v2 = countVersions(res)
	if v2 < 430 || v2 > 570 { // 1000 draws at p=0.5: sd 15.8; ±4.4 sd
		t.Errorf("50/50 split: v1 %d, v2 %d", v1, v2)
	}

	// The Gateway API router: an HTTPRoute splitting two Services 3:1.
	for _, v := range []string{"v1", "v2"} {
		svc := orderService()
		svc.Name, svc.Spec.Selector = "order-service-"+v, map[string]string{"app": "order-service", "version": v}
		_, err := lc.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
		must(t, err)
	}
	route := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "order-gw", "namespace": "default"},
		"spec": map[string]any{"hostnames": []any{"order-gw"}, "rules": []any{map[string]any{"backendRefs": []any{
			map[string]any{"name": "order-service-v1", "port": int64(80), "weight": int64(3)},
			map[string]any{"name": "order-service-v2", "port": int64(80), "weight": int64(1)}}}}}}}
	_, err = dyn.Resource(meshproxy.HTTPRoutes).Namespace("default").Create(ctx, route, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, "the proxy to see the HTTPRoute", func() bool {
		return proxy.ResourceVersion("HTTPRoute", "default", "order-gw") != ""
	})
	res = loadgen.Run(ctx, "http://"+proxy.Addr+"/", "order-gw", 400, 2500*time.Millisecond)
	v1, v2 = countVersions(res)
	if res.Codes[200] != 1000 || v2 < 195 || v2 > 305 { // p=0.25: sd 13.7; ±4 sd
		t.Errorf("HTTPRoute 3:1 split: codes %v, v1 %d, v2 %d, answers %v", res.Codes, v1, v2, res.Bodies)
	}
}
