package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

// Secrets gives a run the values of the secrets its pipeline names. The
// engine's implementation checks what the run's repository is granted
// (triggers.Grants); LocalSecrets serves `slipway run` on one's own
// machine. Resolve is called once per execution of a run, before any stage
// starts, and must be safe for concurrent use. An error fails the run with
// its text as the reason: it must say what was refused, never a value.
type Secrets interface {
	Resolve(ctx context.Context, run *store.Run, p *pipeline.Pipeline) (map[string]string, error)
}

// LocalSecrets reads {env: VAR} and {file: PATH} references of pipelines
// the operator wrote, and secrets only named from what Grant says. It
// refuses untrusted runs that reference sources (validation refuses them
// first; this is the second lock).
type LocalSecrets struct {
	LookupEnv func(string) (string, bool)
	// Grant gives where a secret only named comes from for run, or why it
	// is not granted. Nil: nothing is granted (`slipway run`).
	Grant func(run *store.Run, name string) (pipeline.SecretRef, error)
}

// Resolve implements Secrets.
func (l LocalSecrets) Resolve(_ context.Context, run *store.Run, p *pipeline.Pipeline) (map[string]string, error) {
	out := make(map[string]string, len(p.Secrets))
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		ref := p.Secrets[name]
		switch {
		case ref.Granted && l.Grant == nil:
			return nil, fmt.Errorf("secret %s: nothing grants it here (secrets listed by name are granted by the engine config, repositories[].secrets)", name)
		case ref.Granted:
			var err error
			if ref, err = l.Grant(run, name); err != nil {
				return nil, err
			}
		case run.Untrusted:
			return nil, fmt.Errorf("secret %s: a pipeline read from a repository may not say where a secret comes from", name)
		}
		v, err := ref.Read(l.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

var _ Secrets = LocalSecrets{}
