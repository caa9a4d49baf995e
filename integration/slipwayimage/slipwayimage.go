// Package slipwayimage builds Slipway's own image — the repository's
// Dockerfile — with the pinned Kaniko executor in the build stage's local
// sandbox (stages/kinds/build.Local: no Docker engine), from a static slipway
// and the static Trivy, onto a distroless-like base it pushes to the same
// registry (gcr.io cannot be reached here). `make image` and the tests
// that run Slipway in the cluster use it.
package slipwayimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/stages/kinds/build"
)

// Options says what to build and where to push it.
type Options struct {
	Dockerfile string // the repository's Dockerfile
	Slipway    string // a static slipway binary (CGO_ENABLED=0)
	Trivy      string // the static Trivy CLI
	Kaniko     string // the static Kaniko executor
	Registry   string // host:port of the plain-HTTP registry it goes to, with its base
	Ref        string // the image's repository:tag in Registry; default slipway/slipway:dev
	Log        io.Writer
}

// Build builds the image, pushes it and returns it by digest
// (REGISTRY/repository@sha256:…).
func Build(ctx context.Context, o Options) (string, error) {
	if o.Ref == "" {
		o.Ref = "slipway/slipway:dev"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	base := o.Registry + "/base/static:nonroot"
	if _, err := registry.PushStaticBase(base); err != nil {
		return "", fmt.Errorf("pushing the base image: %w", err)
	}
	dir, err := os.MkdirTemp("", "slipway-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // the sandbox's mapped root reads it
		return "", err
	}
	for name, src := range map[string]string{"Dockerfile": o.Dockerfile, "slipway": o.Slipway, "trivy": o.Trivy} {
		data, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), data, 0o755)
		}
		if err != nil {
			return "", fmt.Errorf("preparing the build context: %w", err)
		}
	}
	dest := o.Registry + "/" + o.Ref
	res, err := (&build.Local{Executor: o.Kaniko}).Build(ctx, build.Request{
		ContextDir: dir, Dockerfile: filepath.Join(dir, "Dockerfile"), Destination: dest,
		BuildArgs: map[string]string{"BASE": base}, Insecure: []string{o.Registry},
	}, o.Log)
	if err != nil {
		return "", fmt.Errorf("building %s with Kaniko: %w", dest, err)
	}
	tag, err := name.NewTag(dest, name.Insecure)
	if err != nil {
		return "", err
	}
	return tag.Context().Name() + "@" + res.Digest, nil
}
