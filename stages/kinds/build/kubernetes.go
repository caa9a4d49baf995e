package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"

	"github.com/slipwayci/slipway/stages/pods"
)

// KanikoImage is the official executor image the kubernetes executor runs
// unless the engine names another.
const KanikoImage = "gcr.io/kaniko-project/executor:v1.23.2"

// Kubernetes runs the Kaniko executor as a Pod (package pods) with the
// same arguments as the local executor: the Pod's init container fetches
// the run's commit, the registry credentials are a file of the attempt's
// Secret, and the digest comes back as the termination message.
type Kubernetes struct {
	Pods  *pods.Runner // nil: the engine has no cluster to run Pods on
	Image string       // default KanikoImage
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Build runs the build Pod and returns the digest it reports.
func (k *Kubernetes) Build(ctx context.Context, req Request, log io.Writer) (Result, error) {
	if k.Pods == nil {
		return Result{}, pods.ErrNoCluster
	}
	if req.Run == nil {
		return Result{}, errors.New("kubernetes build: the request names no run")
	}
	checkout, err := pods.CheckoutOf(req.Run)
	if err != nil {
		return Result{}, fmt.Errorf("kubernetes build: %w", err)
	}
	spec, err := k.spec(req, checkout)
	if err != nil {
		return Result{}, err
	}
	out, err := k.Pods.Run(ctx, req.Run, spec)
	if err != nil {
		return Result{}, err
	}
	if out.ExitCode != 0 {
		return Result{}, fmt.Errorf("the Kaniko executor failed in pod %s (exit code %d); its log is above", out.Pod, out.ExitCode)
	}
	if !digestRE.MatchString(out.Message) {
		return Result{}, fmt.Errorf("the build pod %s reported %q, not an image digest", out.Pod, out.Message)
	}
	return Result{Digest: out.Message}, nil
}

// spec is the build Pod's work: the executor on the checkout, with the
// same arguments as the local executor.
func (k *Kubernetes) spec(req Request, checkout *pods.Checkout) (pods.Spec, error) {
	contextRel, err := filepath.Rel(req.Run.Workdir, req.ContextDir)
	if err != nil || !filepath.IsLocal(contextRel) && contextRel != "." {
		return pods.Spec{}, fmt.Errorf("kubernetes build: the context %s is not inside the checkout", req.ContextDir)
	}
	dockerfileRel, err := filepath.Rel(req.Run.Workdir, req.Dockerfile)
	if err != nil || !filepath.IsLocal(dockerfileRel) {
		return pods.Spec{}, fmt.Errorf("kubernetes build: the Dockerfile %s is not inside the checkout", req.Dockerfile)
	}
	src := path.Join(pods.Workspace, "src")
	image := k.Image
	if image == "" {
		image = KanikoImage
	}
	spec := pods.Spec{
		Role:  "build",
		Tool:  "kaniko",
		Image: image,
		Args: executorArgs(req, path.Join(src, filepath.ToSlash(contextRel)), path.Join(src, filepath.ToSlash(dockerfileRel)),
			"/dev/termination-log"),
		Checkout: checkout,
	}
	if err := spec.Place(req.Pod); err != nil {
		return pods.Spec{}, err
	}
	if req.DockerConfig != nil {
		spec.Files = map[string][]byte{"/kaniko/.docker/config.json": req.DockerConfig}
	}
	return spec, nil
}

var _ Builder = (*Kubernetes)(nil)
