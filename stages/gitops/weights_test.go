package gitops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const virtualService = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: order-service}
spec:
  hosts: [order-service]
  http:
    - match: [{headers: {x-canary: {exact: "always"}}}]   # testers always see the canary
      route:
        - destination: {host: order-service, subset: v2}
    - route:
        # the canary's share: moved by slipway
        - destination: {host: order-service, subset: v1}
          weight: 90
        - destination: {host: order-service, subset: v2}
          weight: 10
      retries: {attempts: 3}
`

const httpRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: payments}
spec:
  hostnames: [payments]
  rules:
    - backendRefs:
        - {name: payments-stable, port: 80, weight: 100}
        - {name: payments-canary, port: 80, weight: 0} # the canary
`

func TestSetWeightsKeepsEverythingElse(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write(t, root, "apps/shop/virtualservice.yaml", virtualService)
	write(t, root, "apps/shop/httproute.yaml", httpRoute)
	write(t, root, "apps/shop/other.yaml", "kind: ConfigMap\nmetadata: {name: x}\n")
	changed, err := SetWeights(root, "apps/shop", Router{Kind: "VirtualService", Name: "order-service", Stable: "v1", Canary: "v2"}, 25)
	if err != nil || !changed {
		t.Fatalf("VirtualService: %v %v", changed, err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "apps/shop/virtualservice.yaml"))
	for _, want := range []string{"weight: 75", "weight: 25", "# testers always see the canary", "# the canary's share: moved by slipway", "retries: {attempts: 3}", `x-canary: {exact: "always"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("VirtualService lacks %q:\n%s", want, b)
		}
	}
	if again, _ := SetWeights(root, "apps/shop", Router{Kind: "VirtualService", Name: "order-service", Stable: "v1", Canary: "v2"}, 25); again {
		t.Error("setting the same weights again changed the file")
	}
	changed, err = SetWeights(root, "apps/shop", Router{Kind: "HTTPRoute", Name: "payments", Stable: "payments-stable", Canary: "payments-canary"}, 10)
	b, _ = os.ReadFile(filepath.Join(root, "apps/shop/httproute.yaml"))
	if err != nil || !changed || !strings.Contains(string(b), "weight: 90") || !strings.Contains(string(b), "weight: 10} # the canary") {
		t.Errorf("HTTPRoute: %v %v\n%s", changed, err, b)
	}
	for _, tt := range []struct {
		r    Router
		w    int
		want string
	}{
		{Router{Kind: "VirtualService", Name: "missing", Stable: "v1", Canary: "v2"}, 10, `no VirtualService "missing"`},
		{Router{Kind: "VirtualService", Name: "order-service", Stable: "v1", Canary: "v3"}, 10, "sends to both v1 and v3"},
		{Router{Kind: "VirtualService", Name: "order-service", Stable: "v1", Canary: "v2"}, 101, "outside 0..100"},
	} {
		if _, err := SetWeights(root, "apps/shop", tt.r, tt.w); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v %d: %v, want %q", tt.r, tt.w, err, tt.want)
		}
	}
}
