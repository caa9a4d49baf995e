package gitops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Weights reads what SetWeights writes, from YAML or from the JSON Argo CD
// reports live; a destination without a weight counts as 0.
func TestWeightsReadsBothRoutersInYAMLAndJSON(t *testing.T) {
	t.Parallel()
	vs := Router{Kind: "VirtualService", Name: "order-service", Stable: "v1", Canary: "v2"}
	route := Router{Kind: "HTTPRoute", Name: "payments", Stable: "payments-stable", Canary: "payments-canary"}
	tests := []struct {
		name, manifest string
		r              Router
		stable, canary int
		wantErr        bool
	}{
		{"istio yaml", "kind: VirtualService\nspec:\n  http:\n    - route:\n        - {destination: {host: a, subset: v1}, weight: 75}\n        - {destination: {host: a, subset: v2}, weight: 25}\n", vs, 75, 25, false},
		{"istio live json", `{"kind":"VirtualService","spec":{"http":[{"match":[{"headers":{"x":{"exact":"y"}}}],"route":[{"destination":{"subset":"v2"}}]},{"route":[{"destination":{"subset":"v1"},"weight":100},{"destination":{"subset":"v2"}}]}]}}`, vs, 100, 0, false},
		{"gateway api", `{"kind":"HTTPRoute","spec":{"rules":[{"backendRefs":[{"name":"payments-stable","weight":90},{"name":"payments-canary","weight":10}]}]}}`, route, 90, 10, false},
		{"no such pair", `{"spec":{"http":[{"route":[{"destination":{"subset":"v1"}}]}]}}`, vs, 0, 0, true},
		{"weight not a number", "spec:\n  http:\n    - route:\n        - {destination: {subset: v1}, weight: lots}\n        - {destination: {subset: v2}, weight: 0}\n", vs, 0, 0, true},
		{"not yaml", "{", vs, 0, 0, true},
	}
	for _, tt := range tests {
		s, c, err := Weights(tt.manifest, tt.r)
		if (err != nil) != tt.wantErr || s != tt.stable || c != tt.canary {
			t.Errorf("%s: %d/%d, %v; want %d/%d (error %v)", tt.name, s, c, err, tt.stable, tt.canary, tt.wantErr)
		}
	}
}

// GetImage reads what SetImage writes, for each locator; SetImage with no
// digest writes a tag reference as it is.
func TestGetImageReadsEveryLocator(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	app := filepath.Join(root, "apps", "shop")
	must(t, os.MkdirAll(app, 0o755))
	files := map[string]string{
		"kustomization.yaml": "images:\n  - name: shop\n    newName: r/shop\n    newTag: v1\n",
		"values.yaml":        "canary:\n  image: r/shop@sha256:aaa\n",
		"deploy.yaml":        "spec:\n  template:\n    spec:\n      containers:\n        - name: shop\n          image: r/shop:v1 # pinned\n",
	}
	for name, body := range files {
		must(t, os.WriteFile(filepath.Join(app, name), []byte(body), 0o644))
	}
	for _, tt := range []struct {
		loc  Locator
		want string
	}{
		{Locator{Kustomize: "shop"}, "r/shop:v1"},
		{Locator{HelmFile: "values.yaml", HelmKey: "canary.image"}, "r/shop@sha256:aaa"},
		{Locator{ManifestFile: "deploy.yaml", Container: "shop"}, "r/shop:v1"},
	} {
		got, err := GetImage(root, "apps/shop", tt.loc)
		if err != nil || got != tt.want {
			t.Errorf("GetImage(%+v) = %q, %v; want %q", tt.loc, got, err, tt.want)
		}
		if _, err := SetImage(root, "apps/shop", tt.loc, "r/shop", "sha256:bbb"); err != nil {
			t.Fatal(err)
		}
		if got, _ := GetImage(root, "apps/shop", tt.loc); got != "r/shop@sha256:bbb" {
			t.Errorf("after SetImage by digest: %q", got)
		}
		if _, err := SetImage(root, "apps/shop", tt.loc, "127.0.0.1:5000/shop:v0", ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := GetImage(root, "apps/shop", tt.loc); got != "127.0.0.1:5000/shop:v0" {
			t.Errorf("after SetImage by tag: %q", got)
		}
	}
	if _, err := GetImage(root, "apps/shop", Locator{ManifestFile: "deploy.yaml", Container: "other"}); err == nil {
		t.Error("a missing container was read as an image")
	}
	if _, err := GetImage(root, "../..", Locator{ManifestFile: "etc/passwd", Container: "x"}); err == nil {
		t.Error("a path outside the repository was read")
	}
	b, _ := os.ReadFile(filepath.Join(app, "deploy.yaml"))
	if want := "# pinned"; !contains(string(b), want) {
		t.Errorf("the comment was lost:\n%s", b)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
