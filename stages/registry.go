package stages

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
)

// Registry maps stage kind names to their factories. It is built by hand
// in cmd/slipway; there is no global registration.
type Registry struct {
	kinds map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]Factory{}} }

// Register adds a kind. Registering a name twice, or a name the pipeline
// file cannot name (pipeline.Kinds), is an error.
func (r *Registry) Register(kind string, f Factory) error {
	if kind == "" || f == nil {
		return fmt.Errorf("registering stage kind %q: empty name or nil factory", kind)
	}
	if !slices.Contains(pipeline.Kinds, kind) {
		return fmt.Errorf("registering stage kind %q: not a kind a pipeline file can name (%s)", kind, strings.Join(pipeline.Kinds, ", "))
	}
	if _, dup := r.kinds[kind]; dup {
		return fmt.Errorf("registering stage kind %q: already registered", kind)
	}
	r.kinds[kind] = f
	return nil
}

// Kinds lists the registered kind names, sorted.
func (r *Registry) Kinds() []string { return slices.Sorted(maps.Keys(r.kinds)) }

// Has reports whether kind is registered.
func (r *Registry) Has(kind string) bool { _, ok := r.kinds[kind]; return ok }

// Check returns an error naming the first stage of p whose kind this
// registry lacks: a pipeline this engine could not run.
func (r *Registry) Check(p *pipeline.Pipeline) error {
	for i, st := range p.Stages {
		if kind := st.Kind(); !r.Has(kind) {
			return fmt.Errorf("stages[%d] (%s): stage kind %q is not available in this engine (available: %s)", i, st.Name, kind, strings.Join(r.Kinds(), ", "))
		}
	}
	return nil
}

// New makes the Stage for one attempt. An unregistered kind is an error
// that names it; there is no fallback kind.
func (r *Registry) New(kind string, spec any) (Stage, error) {
	f, ok := r.kinds[kind]
	if !ok {
		return nil, fmt.Errorf("stage kind %q is not available in this engine (available: %s)", kind, strings.Join(r.Kinds(), ", "))
	}
	s, err := f(spec)
	if err != nil {
		return nil, fmt.Errorf("creating %s stage: %w", kind, err)
	}
	return s, nil
}
