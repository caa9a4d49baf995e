// Package deploy is the deploy stage kind: it writes the built image — by
// digest — into the app's canary workload in the GitOps config repository
// (one commit naming the pipeline, run, source commit and digest), has
// Argo CD sync exactly that revision, and waits until Argo CD reports it
// Synced and Healthy; when it does not get there, the error says why, from
// the resource tree and the failing Pods.
package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/gitops"
)

// DefaultTimeout bounds the wait for Synced and Healthy.
const DefaultTimeout = 5 * time.Minute

// Stage is one deploy attempt.
type Stage struct {
	spec pipeline.DeploySpec
}

// New returns the factory of the deploy kind.
func New() stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.DeploySpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("deploy stage needs a *pipeline.DeploySpec, got %T", spec)
		}
		return &Stage{spec: *s}, nil
	}
}

// Validate checks the image reference, when one is set.
func (s *Stage) Validate() error {
	if s.spec.Image != "" && !strings.Contains(s.spec.Image, "@sha256:") {
		return fmt.Errorf("image %q: deploy images by digest (repository@sha256:…), not by tag", s.spec.Image)
	}
	return nil
}

// Run commits the digest and syncs it.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	ref := s.spec.Image
	if ref == "" {
		var err error
		if ref, err = stages.BuiltImage(run.Outputs); err != nil {
			return stages.Result{}, fmt.Errorf("%w (deploy.image)", err)
		}
	}
	image, digest, _ := strings.Cut(ref, "@")
	say := func(format string, args ...any) { fmt.Fprintf(run.Log, "slipway: "+format+"\n", args...) }
	a := s.spec.ArgoCD
	client, err := argocd.Dial(a.Server, run.Secrets[a.Token], a.PlainText, a.Insecure)
	if err != nil {
		return stages.Result{}, stages.Retryable(err)
	}
	defer client.Close()
	// Argo CD must answer before anything is committed it could not sync.
	if err := client.Check(ctx, a.App); err != nil {
		return stages.Result{}, err
	}
	commit, err := s.write(ctx, run, image, digest, say)
	if err != nil {
		return stages.Result{}, err
	}
	timeout := time.Duration(a.Timeout)
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	res, err := client.SyncAndWait(ctx, a.App, commit.Commit, timeout, say)
	if err != nil {
		return stages.Result{Outputs: map[string]string{"commit": commit.Commit}}, err
	}
	say("Argo CD reports %s Synced and Healthy at %.7s after %s", a.App, res.Revision, res.Took.Round(time.Millisecond))
	return stages.Result{Outputs: map[string]string{"commit": commit.Commit, "revision": res.Revision, "ref": ref,
		"image": image, "digest": digest, "changed": fmt.Sprint(commit.Changed)}}, nil
}

// write commits image@digest into the config repository.
func (s *Stage) write(ctx context.Context, run *stages.Run, image, digest string, say func(string, ...any)) (gitops.Result, error) {
	g := s.spec.GitOps
	w := gitops.WriterFor(g, run.Secrets)
	loc := gitops.LocatorOf(g.Image)
	msg := fmt.Sprintf("slipway: deploy %s@%.19s to %s\n\nPipeline: %s\nRun: %d\nSource: %s %s\nImage: %s@%s\n",
		lastPart(image), digest, g.Path, run.Pipeline, run.ID, run.Trigger.Ref, run.Trigger.SHA, image, digest)
	res, err := w.Write(ctx, msg, func(root string) (bool, error) { return gitops.SetImage(root, g.Path, loc, image, digest) })
	if err != nil {
		return res, fmt.Errorf("writing %s into the config repository: %w", digest, argocd.Redact(err, run.Secrets[g.Auth.Token]))
	}
	if res.Changed {
		say("committed %.7s to %s %s (%d attempt(s)): %s now runs %s@%.19s", res.Commit, g.Repo, w.Branch, res.Attempts, g.Path, lastPart(image), digest)
	} else {
		say("the config repository already deploys %s@%.19s; no new commit (%.7s)", lastPart(image), digest, res.Commit)
	}
	return res, nil
}

func lastPart(image string) string { return image[strings.LastIndex(image, "/")+1:] }

var _ stages.Stage = (*Stage)(nil)
