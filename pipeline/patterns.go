package pipeline

import "regexp"

// The forms names and values in a pipeline file must take. Validation
// checks them, and the pipeline file's JSON Schema carries them, so an
// editor checks them as the engine does.
var (
	// PipelineName is a pipeline's (and an app's) name: a DNS label.
	PipelineName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// StageName is a stage's name.
	StageName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	// EnvName is an environment variable's name.
	EnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// LabelKey is a Kubernetes label key (a node selector's).
	LabelKey = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	// Quantity is a Kubernetes quantity as a stage's Pod may write one: a
	// decimal number and a suffix, decimal (m, k, M, G, T, P, E) or
	// binary (Ki … Ei).
	Quantity = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)
)
