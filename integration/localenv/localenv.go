// Package localenv starts, on loopback, the systems the first half of a
// release talks to: a git server, a container registry holding a busybox
// base image, and an offline Trivy database. Tests and `slipway demo` use
// it; the local Kubernetes cluster and Argo CD join it later.
package localenv

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/trivydb"
)

// Env is a running local environment.
type Env struct {
	Dir      string
	Git      *gitserver.Server
	Registry *registry.Registry
	Base     string // the busybox base image, REGISTRY/base/busybox:1
	TrivyDir string // Trivy cache holding the offline database
}

// Start brings the environment up under dir. Close stops it.
func Start(ctx context.Context, dir string) (*Env, error) {
	e := &Env{Dir: dir, TrivyDir: filepath.Join(dir, "trivy")}
	var err error
	if e.Registry, err = registry.Start(ctx, filepath.Join(dir, "registry")); err != nil {
		return nil, err
	}
	e.Base = e.Registry.Addr + "/base/busybox:1"
	if _, err := registry.PushBusybox(e.Base); err != nil {
		e.Close()
		return nil, fmt.Errorf("pushing the base image: %w", err)
	}
	if e.Git, err = gitserver.Start(ctx, filepath.Join(dir, "git")); err != nil {
		e.Close()
		return nil, err
	}
	if err := trivydb.Write(e.TrivyDir, trivydb.Fixture); err != nil {
		e.Close()
		return nil, fmt.Errorf("writing the offline Trivy database: %w", err)
	}
	return e, nil
}

// Close stops what Start started.
func (e *Env) Close() {
	if e.Git != nil {
		e.Git.Close()
	}
	if e.Registry != nil {
		e.Registry.Stop()
	}
}

// TrivyEnv is the environment that points the scan kind at the offline database.
func (e *Env) TrivyEnv() []string {
	return []string{"SLIPWAY_TRIVY_CACHE=" + e.TrivyDir, "SLIPWAY_TRIVY_OFFLINE=1"}
}
