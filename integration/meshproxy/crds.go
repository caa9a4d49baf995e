package meshproxy

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// The routing resources the proxy understands.
var (
	VirtualServices  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "virtualservices"}
	DestinationRules = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1beta1", Resource: "destinationrules"}
	HTTPRoutes       = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs installs minimal CustomResourceDefinitions for Istio's
// VirtualService and DestinationRule (v1beta1 and v1) and Gateway API's
// HTTPRoute (v1): enough for the API server to store them, with the spec
// left unvalidated (the proxy reads what it needs).
func InstallCRDs(ctx context.Context, client dynamic.Interface) error {
	for _, c := range []struct {
		group, kind, plural string
		versions            []string
	}{
		{"networking.istio.io", "VirtualService", "virtualservices", []string{"v1beta1", "v1"}},
		{"networking.istio.io", "DestinationRule", "destinationrules", []string{"v1beta1", "v1"}},
		{"gateway.networking.k8s.io", "HTTPRoute", "httproutes", []string{"v1"}},
	} {
		var versions []any
		for i, v := range c.versions {
			versions = append(versions, map[string]any{"name": v, "served": true, "storage": i == 0,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
		}
		// *.k8s.io groups need this annotation; Gateway API's CRDs carry it too.
		annotations := map[string]any{"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/1538"}
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": c.plural + "." + c.group, "annotations": annotations},
			"spec": map[string]any{"group": c.group, "scope": "Namespaced", "versions": versions,
				"names": map[string]any{"kind": c.kind, "plural": c.plural, "singular": lower(c.kind), "listKind": c.kind + "List"}},
		}}
		if _, err := client.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("installing the %s CRD: %w", c.kind, err)
		}
	}
	return nil
}

// WaitCRDs waits until the API server serves the routing resources.
func WaitCRDs(ctx context.Context, client dynamic.Interface) error {
	for _, gvr := range []schema.GroupVersionResource{VirtualServices, DestinationRules, HTTPRoutes} {
		if _, err := client.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return err
		}
	}
	return nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
