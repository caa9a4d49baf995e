// Package meshproxy stands in for Istio (and a Gateway API implementation)
// in the local cluster's tests and demo — it is not a product feature. It
// watches VirtualService + DestinationRule and HTTPRoute objects in the API
// server and routes each request (by its Host) to a ready Pod of the
// destination drawn by weight, so a weight changed in the API server takes
// effect on the next request once the watch delivers it. It exports
// Istio-named metrics — istio_requests_total and
// istio_request_duration_milliseconds (reporter, destination_workload,
// destination_workload_namespace, response_code) — for Prometheus.
package meshproxy

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Proxy routes requests by the routing objects of the cluster.
type Proxy struct {
	Addr        string // where requests go: 127.0.0.1:PORT
	MetricsAddr string // where Prometheus scrapes: 127.0.0.1:PORT

	kinds    map[string]cache.SharedIndexInformer
	svcs     cache.SharedIndexInformer
	podInf   cache.SharedIndexInformer
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rngMu    sync.Mutex
	rng      *rand.Rand
}

// Start runs the proxy until ctx ends.
func Start(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) (*Proxy, error) {
	p := &Proxy{kinds: map[string]cache.SharedIndexInformer{}, rng: rand.New(rand.NewSource(time.Now().UnixNano()))}
	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, time.Minute)
	p.kinds["VirtualService"] = dynFactory.ForResource(VirtualServices).Informer()
	p.kinds["DestinationRule"] = dynFactory.ForResource(DestinationRules).Informer()
	p.kinds["HTTPRoute"] = dynFactory.ForResource(HTTPRoutes).Informer()
	factory := informers.NewSharedInformerFactory(kube, time.Minute)
	p.svcs = factory.Core().V1().Services().Informer()
	p.podInf = factory.Core().V1().Pods().Informer()
	dynFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	for _, ok := range dynFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("mesh proxy: routing caches did not sync")
		}
	}
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("mesh proxy: service and pod caches did not sync")
		}
	}
	labels := []string{"reporter", "source_workload", "destination_workload", "destination_workload_namespace", "destination_service_name", "response_code"}
	p.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_requests_total", Help: "Requests, as Istio counts them."}, labels)
	p.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "istio_request_duration_milliseconds",
		Help: "Request duration, as Istio measures it.", Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}}, labels)
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.requests, p.duration)
	var err error
	if p.Addr, err = serve(ctx, http.HandlerFunc(p.serve)); err != nil {
		return nil, err
	}
	if p.MetricsAddr, err = serve(ctx, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})); err != nil {
		return nil, err
	}
	return p, nil
}

func serve(ctx context.Context, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return ln.Addr().String(), nil
}

func (p *Proxy) list(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range p.kinds[kind].GetStore().List() {
		out = append(out, o.(*unstructured.Unstructured))
	}
	return out
}

func (p *Proxy) services(ns string) []*corev1.Service {
	return inNamespace[*corev1.Service](p.svcs, ns)
}

func (p *Proxy) pods(ns string) []*corev1.Pod { return inNamespace[*corev1.Pod](p.podInf, ns) }

// inNamespace lists an informer's objects of one namespace.
func inNamespace[T interface{ GetNamespace() string }](inf cache.SharedIndexInformer, ns string) []T {
	var out []T
	for _, o := range inf.GetStore().List() {
		if x := o.(T); x.GetNamespace() == ns {
			out = append(out, x)
		}
	}
	return out
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	p.rngMu.Lock()
	b, err := route(p, r.Host, p.rng)
	p.rngMu.Unlock()
	if err != nil {
		http.Error(w, "mesh proxy: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", b.addr
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "mesh proxy: upstream "+b.addr+": "+err.Error(), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(rec, r)
	source := r.Header.Get("X-Source-Workload")
	if source == "" {
		source = "unknown"
	}
	svc, _ := splitHost(r.Host)
	values := []string{"destination", source, b.workload, b.namespace, svc, strconv.Itoa(rec.code)}
	p.requests.WithLabelValues(values...).Inc()
	p.duration.WithLabelValues(values...).Observe(float64(time.Since(began).Microseconds()) / 1000)
}

var _ snapshot = (*Proxy)(nil)

// ResourceVersion is the resourceVersion of a routing object (kind
// VirtualService, DestinationRule or HTTPRoute) as the proxy currently
// routes by it, or "" when it has none: how far its view has caught up.
func (p *Proxy) ResourceVersion(kind, namespace, name string) string {
	inf, ok := p.kinds[kind]
	if !ok {
		return ""
	}
	obj, exists, err := inf.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return ""
	}
	return obj.(*unstructured.Unstructured).GetResourceVersion()
}
