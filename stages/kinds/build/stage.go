// Package build is the build stage kind: it builds the repository's
// Dockerfile with the Kaniko executor and pushes the image, whose digest
// later stages deploy. Where Kaniko runs is a Builder: Local (a sandbox on
// this machine) or Kubernetes (a Pod).
package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/workspace"
)

// Stage is one build attempt.
type Stage struct {
	spec     pipeline.BuildSpec
	builders map[string]Builder
}

// New returns the factory of the build kind; builders maps executor names
// (local, kubernetes) to builders.
func New(builders map[string]Builder) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.BuildSpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("build stage needs a *pipeline.BuildSpec, got %T", spec)
		}
		return &Stage{spec: *s, builders: builders}, nil
	}
}

func (s *Stage) executor() string {
	if s.spec.Executor == "" {
		return "local"
	}
	return s.spec.Executor
}

// Validate checks what can be checked without the repository.
func (s *Stage) Validate() error {
	if _, ok := s.builders[s.executor()]; !ok {
		return fmt.Errorf("executor %q is not available in this engine", s.executor())
	}
	if _, err := name.NewRepository(s.spec.Image); err != nil {
		return fmt.Errorf("image %q is not a repository name: %v", s.spec.Image, err)
	}
	return nil
}

// Run builds and pushes the image, then checks the registry serves the
// digest Kaniko reported.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	req, err := s.request(run)
	if err != nil {
		return stages.Result{}, err
	}
	fmt.Fprintf(run.Log, "slipway: building %s with Kaniko (%s executor)\n", req.Destination, s.executor())
	res, err := s.builders[s.executor()].Build(ctx, req, run.Log)
	if err != nil {
		return stages.Result{}, err
	}
	ref := s.spec.Image + "@" + res.Digest
	if err := verifyDigest(ctx, ref, s.spec.Insecure, s.registryAuth(run)); err != nil {
		return stages.Result{}, err
	}
	fmt.Fprintf(run.Log, "slipway: pushed %s\n", ref)
	tag := req.Destination[strings.LastIndex(req.Destination, ":")+1:]
	return stages.Result{Outputs: map[string]string{"image": s.spec.Image, "tag": tag, "digest": res.Digest, "ref": ref}}, nil
}

// request resolves the stage's settings against the run's checkout.
func (s *Stage) request(run *stages.Run) (Request, error) {
	contextDir, err := workspace.Resolve(run.Workdir, orDefault(s.spec.Context, "."), workspace.Dir)
	if err != nil {
		return Request{}, fmt.Errorf("build context: %w", err)
	}
	dockerfile, err := workspace.Resolve(run.Workdir, filepath.Join(orDefault(s.spec.Context, "."), orDefault(s.spec.Dockerfile, "Dockerfile")), workspace.File)
	if err != nil {
		return Request{}, fmt.Errorf("Dockerfile: %w", err)
	}
	tag := s.spec.Tag
	if tag == "" {
		tag = run.Trigger.ShortSHA
	}
	if tag == "" {
		tag = fmt.Sprintf("run-%d", run.ID)
	}
	dest := s.spec.Image + ":" + tag
	if _, err := name.NewTag(dest); err != nil {
		return Request{}, fmt.Errorf("destination %q is not a valid image tag: %v", dest, err)
	}
	req := Request{ContextDir: contextDir, Dockerfile: dockerfile, Destination: dest, BuildArgs: s.spec.BuildArgs,
		Target: s.spec.Target, Cache: s.spec.Cache, CacheRepo: s.spec.CacheRepo, Run: run, Pod: s.spec.Pod}
	if req.Cache && req.CacheRepo == "" {
		req.CacheRepo = s.spec.Image + "/cache"
	}
	if s.spec.Insecure {
		req.Insecure = []string{registryHost(s.spec.Image)}
	}
	if s.spec.Auth.Token != "" {
		if req.DockerConfig, err = dockerConfig(registryHost(s.spec.Image), orDefault(s.spec.Auth.Username, "slipway"), run.Secrets[s.spec.Auth.Token]); err != nil {
			return Request{}, err
		}
	}
	return req, nil
}

// dockerConfig is a Docker config.json holding one registry credential.
func dockerConfig(host, user, token string) ([]byte, error) {
	if token == "" {
		return nil, errors.New("registry token secret is empty")
	}
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + token))
	return json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
}

// registryAuth is the credential for the image's registry, or anonymous.
func (s *Stage) registryAuth(run *stages.Run) authn.Authenticator {
	if s.spec.Auth.Token == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: orDefault(s.spec.Auth.Username, "slipway"), Password: run.Secrets[s.spec.Auth.Token]}
}

// verifyDigest asks the registry for the pushed manifest by digest.
func verifyDigest(ctx context.Context, ref string, insecure bool, auth authn.Authenticator) error {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewDigest(ref, opts...)
	if err != nil {
		return fmt.Errorf("digest reference %s: %w", ref, err)
	}
	desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuth(auth))
	if err != nil {
		return stages.Retryable(fmt.Errorf("checking %s in the registry: %w", ref, err))
	}
	if desc.Digest.String() != r.DigestStr() {
		return fmt.Errorf("the registry serves %s for %s", desc.Digest, ref)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var _ stages.Stage = (*Stage)(nil)
