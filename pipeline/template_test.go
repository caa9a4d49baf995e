package pipeline

import (
	"strings"
	"testing"
)

func TestRenderSpecUsesEarlierOutputsAndKeepsLateFields(t *testing.T) {
	t.Parallel()
	spec := &CanarySpec{
		Router: RouterSpec{Istio: &IstioRouter{VirtualService: "{{ .App }}", StableSubset: "v1", CanarySubset: "v2"}},
		Analysis: AnalysisSpec{Metrics: []Metric{
			{Name: "errors", Query: `sum(rate(x{version="{{ .Canary }}"}[1m]))`},
		}},
	}
	data := &Data{App: "order-service", Stages: map[string]map[string]string{"build": {"digest": "sha256:abc"}}}
	out, err := RenderSpec("canary", spec, data)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*CanarySpec)
	if got.Router.Istio.VirtualService != "order-service" {
		t.Errorf("virtualService = %q", got.Router.Istio.VirtualService)
	}
	if got.Analysis.Metrics[0].Query != spec.Analysis.Metrics[0].Query {
		t.Errorf("late query was rendered: %q", got.Analysis.Metrics[0].Query)
	}
	if spec.Router.Istio.VirtualService != "{{ .App }}" {
		t.Error("RenderSpec changed its input")
	}
}

func TestRenderSpecMissingOutputIsAnError(t *testing.T) {
	t.Parallel()
	spec := &FakeSpec{Outputs: map[string]string{"image": "reg/app@{{ .Stages.build.digest }}"}}
	_, err := RenderSpec("deploy", spec, &Data{Stages: map[string]map[string]string{"build": {}}})
	if err == nil || !strings.Contains(err.Error(), `rendering stage deploy: deploy.outputs.image`) || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("RenderSpec = %v, want an error naming the field and the missing output", err)
	}
}
