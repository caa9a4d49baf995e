package gitops

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/slipwayci/slipway/stages/workspace"
)

// Router names the traffic split to edit: an Istio VirtualService's two
// subsets, or a Gateway API HTTPRoute's two backendRefs.
type Router struct {
	Kind   string // VirtualService or HTTPRoute
	Name   string
	Stable string // subset (Istio) or Service name (Gateway API)
	Canary string
}

// SetWeights sets the canary's weight (and the stable's, 100 − canary) in
// the router object found among the YAML files of appDir, keeping every
// other route, match, retry and comment. It reports whether a file changed.
func SetWeights(root, appDir string, r Router, canary int) (bool, error) {
	if canary < 0 || canary > 100 {
		return false, fmt.Errorf("canary weight %d is outside 0..100", canary)
	}
	dir, err := workspace.Resolve(root, appDir, workspace.Dir)
	if err != nil {
		return false, err
	}
	file, err := findObject(dir, r.Kind, r.Name)
	if err != nil {
		return false, err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(realRoot, file)
	if err != nil {
		return false, err
	}
	return editYAML(root, rel, func(rn *yaml.RNode) error {
		stable, canaryDest, err := findPair(rn, r)
		if err != nil {
			return err
		}
		for d, w := range map[*yaml.RNode]int{stable: 100 - canary, canaryDest: canary} {
			if err := setScalar(d, "weight", fmt.Sprint(w), yaml.NewScalarRNode); err != nil {
				return err
			}
		}
		return nil
	})
}

// Weights reads the stable and canary weights of r from a manifest (YAML
// or JSON, e.g. the live object Argo CD reports). A destination without a
// weight counts as 0.
func Weights(manifest string, r Router) (stable, canary int, err error) {
	rn, err := yaml.Parse(manifest)
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s %s: %w", r.Kind, r.Name, err)
	}
	s, c, err := findPair(rn, r)
	if err != nil {
		return 0, 0, err
	}
	weight := func(d *yaml.RNode) (int, error) {
		w, _ := d.Pipe(yaml.Lookup("weight"))
		if w == nil {
			return 0, nil
		}
		var n int
		_, err := fmt.Sscan(yaml.GetValue(w), &n)
		return n, err
	}
	if stable, err = weight(s); err == nil {
		canary, err = weight(c)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the weights of %s %s: %w", r.Kind, r.Name, err)
	}
	return stable, canary, nil
}

// findPair finds r's stable and canary destinations: Istio's
// spec.http[].route[].destination.subset, Gateway API's
// spec.rules[].backendRefs[].name.
func findPair(rn *yaml.RNode, r Router) (stable, canary *yaml.RNode, err error) {
	switch r.Kind {
	case "VirtualService":
		return pair(rn, r, []string{"spec", "http"}, "route", []string{"destination", "subset"})
	case "HTTPRoute":
		return pair(rn, r, []string{"spec", "rules"}, "backendRefs", []string{"name"})
	}
	return nil, nil, fmt.Errorf("unknown router kind %q", r.Kind)
}

// findObject returns the file (one document) in dir holding kind/name.
func findObject(dir, kind, name string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil || strings.Contains(string(b), "\n---") {
			continue
		}
		rn, err := yaml.Parse(string(b))
		if err != nil {
			continue
		}
		if rn.GetKind() == kind && rn.GetName() == name {
			return f, nil
		}
	}
	return "", fmt.Errorf("no %s %q in a single-document YAML file of %s", kind, name, dir)
}

// pair returns, from the first of the routes (at routesPath) whose
// destinations (the list at destsField) include both the stable and the
// canary — each named by the field at keyPath — those two destinations.
func pair(rn *yaml.RNode, r Router, routesPath []string, destsField string, keyPath []string) (stable, canary *yaml.RNode, err error) {
	routes, err := rn.Pipe(yaml.Lookup(routesPath...))
	if err != nil || routes == nil {
		return nil, nil, fmt.Errorf("%s %s has no %s", r.Kind, r.Name, strings.Join(routesPath, "."))
	}
	items, _ := routes.Elements()
	for _, route := range items {
		dests, _ := route.Pipe(yaml.Lookup(destsField))
		if dests == nil {
			continue
		}
		found := map[string]*yaml.RNode{}
		ds, _ := dests.Elements()
		for _, d := range ds {
			if key, _ := d.Pipe(yaml.Lookup(keyPath...)); key != nil {
				found[yaml.GetValue(key)] = d
			}
		}
		if found[r.Stable] != nil && found[r.Canary] != nil {
			return found[r.Stable], found[r.Canary], nil
		}
	}
	return nil, nil, fmt.Errorf("no route of %s %s sends to both %s and %s", r.Kind, r.Name, r.Stable, r.Canary)
}
