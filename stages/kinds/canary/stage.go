package canary

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/analysis"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/gitops"
)

// Defaults of a canary's settings.
const (
	DefaultInterval    = time.Minute
	DefaultSyncTimeout = 5 * time.Minute
	pollEvery          = 2 * time.Second // how often commands are looked for, besides being woken by one
)

// Stage is one canary attempt.
type Stage struct {
	spec       pipeline.CanarySpec
	prometheus string
}

// New returns the factory of the canary kind. prometheus is the address
// used when a pipeline names none (the engine's configuration; may be "").
func New(prometheus string) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.CanarySpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("canary stage needs a *pipeline.CanarySpec, got %T", spec)
		}
		st := &Stage{spec: *s, prometheus: s.Analysis.Prometheus}
		if st.prometheus == "" {
			st.prometheus = prometheus
		}
		return st, nil
	}
}

// Validate checks what the pipeline's validation cannot: the image (after
// templates) and that analysis has a Prometheus to ask.
func (s *Stage) Validate() error {
	if s.spec.Image != "" && !strings.Contains(s.spec.Image, "@sha256:") {
		return fmt.Errorf("image %q: a canary releases an image by digest (repository@sha256:…)", s.spec.Image)
	}
	if len(s.spec.Analysis.Metrics) > 0 && s.prometheus == "" {
		return fmt.Errorf("analysis has metrics but no Prometheus: set analysis.prometheus")
	}
	return nil
}

// Run releases the image: on from the checkpoint to promoted or rolled back.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	if run.Release == nil {
		return stages.Result{}, fmt.Errorf("the canary kind needs the engine's release store")
	}
	r, err := s.open(ctx, run)
	if err != nil {
		return stages.Result{}, err
	}
	defer r.close()
	return r.drive(ctx)
}

// open gathers what the release needs: the image, Argo CD, the config
// repository, the router, Prometheus, the checkpoint.
func (s *Stage) open(ctx context.Context, run *stages.Run) (*rollout, error) {
	ref := s.spec.Image
	if ref == "" {
		var err error
		if ref, err = stages.BuiltImage(run.Outputs); err != nil {
			return nil, fmt.Errorf("%w (canary.image)", err)
		}
	}
	a := s.spec.ArgoCD
	client, err := argocd.Dial(a.Server, run.Secrets[a.Token], a.PlainText, a.Insecure)
	if err != nil {
		return nil, stages.Retryable(err)
	}
	r := &rollout{spec: s.spec, run: run, argo: client, ref: ref, writer: gitops.WriterFor(s.spec.GitOps, run.Secrets),
		say: func(format string, args ...any) { fmt.Fprintf(run.Log, "slipway: "+format+"\n", args...) }}
	r.image, r.digest, _ = strings.Cut(ref, "@")
	r.notify = newNotifier(s.spec.Notify, run.Secrets, r.say)
	r.router, err = NewRouter(s.spec.Router, s.spec.GitOps.Path, func(ctx context.Context, kind, name string) (string, error) {
		return client.Live(ctx, a.App, kind, name)
	})
	if err == nil && s.prometheus != "" {
		r.querier, err = analysis.NewPrometheus(s.prometheus)
	}
	if err == nil {
		err = client.Check(ctx, a.App)
	}
	if err == nil {
		err = r.load(ctx)
	}
	if err != nil {
		client.Close()
		return nil, err
	}
	return r, nil
}

// load reads the checkpoint, or starts one: the stable image as the
// config repository has it now, and the commit that deployed the canary.
func (r *rollout) load(ctx context.Context) error {
	cp, err := r.run.Release.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("reading the release checkpoint: %w", err)
	}
	if cp != nil {
		r.cp = *cp
		if err := json.Unmarshal(cp.Data, &r.notes); err != nil {
			return fmt.Errorf("reading the release checkpoint: %w", err)
		}
		r.say("resuming the release of %s: %s at step %d (canary weight %d%%)", r.short(), cp.State, cp.Step+1, cp.Weight)
		return nil
	}
	head, err := r.writer.Write(ctx, "", func(root string) (bool, error) {
		ref, err := gitops.GetImage(root, r.spec.GitOps.Path, gitops.LocatorOf(r.spec.Stable))
		r.notes.StableRef = ref
		return false, err
	})
	if err != nil {
		return fmt.Errorf("reading the stable image from the config repository: %w", argocd.Redact(err, r.run.Secrets[r.spec.GitOps.Auth.Token]))
	}
	r.notes.ReleaseCommit = releaseCommit(r.run.Outputs, r.digest, head.Commit)
	return nil
}

// releaseCommit is the config-repo commit that deployed digest: the
// "commit" output of the earlier stage that deployed it, else head.
func releaseCommit(outputs map[string]map[string]string, digest, head string) string {
	for _, out := range outputs {
		if out["digest"] == digest && out["commit"] != "" {
			return out["commit"]
		}
	}
	return head
}

var _ stages.Stage = (*Stage)(nil)
