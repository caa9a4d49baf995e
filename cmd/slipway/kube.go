package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/stages/pods"
)

// defaultHelperImage is the image whose `slipway checkout` fetches the
// commit into a stage's Pod: this release's own image.
const defaultHelperImage = "ghcr.io/slipwayci/slipway"

// podRunner is where executor: kubernetes runs stages, from the
// environment: SLIPWAY_KUBECONFIG (a kubeconfig file; in a cluster, the
// engine's own service account when unset), SLIPWAY_POD_NAMESPACE (default
// the engine's own namespace in a cluster, else slipway-builds),
// SLIPWAY_HELPER_IMAGE (default this release's image),
// SLIPWAY_POD_SERVICE_ACCOUNT (the stage Pods'),
// SLIPWAY_POD_SERVICE_ACCOUNTS (comma-separated: the others a pipeline
// may name), SLIPWAY_POD_PULL_SECRET (the Secret holding the engine's
// registry credentials, which the Pods pull their images with) and
// SLIPWAY_POD_FENCE (an address the build namespace's NetworkPolicies
// refuse, or api-server: each Pod waits until it is refused before
// anything of the stage runs). Without a cluster it is nil, and such stages fail saying so.
func podRunner() (*pods.Runner, error) {
	var cfg *rest.Config
	var err error
	switch path := os.Getenv("SLIPWAY_KUBECONFIG"); {
	case path != "":
		if cfg, err = clientcmd.BuildConfigFromFlags("", path); err != nil {
			return nil, fmt.Errorf("reading SLIPWAY_KUBECONFIG: %w", err)
		}
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("reading the in-cluster config: %w", err)
		}
	default:
		return nil, nil
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	r := &pods.Runner{Client: client, Namespace: os.Getenv("SLIPWAY_POD_NAMESPACE"), HelperImage: os.Getenv("SLIPWAY_HELPER_IMAGE"),
		ServiceAccount: os.Getenv("SLIPWAY_POD_SERVICE_ACCOUNT"), PullSecret: os.Getenv("SLIPWAY_POD_PULL_SECRET"),
		Fence: os.Getenv("SLIPWAY_POD_FENCE")}
	for _, sa := range strings.Split(os.Getenv("SLIPWAY_POD_SERVICE_ACCOUNTS"), ",") {
		if sa = strings.TrimSpace(sa); sa != "" {
			r.ServiceAccounts = append(r.ServiceAccounts, sa)
		}
	}
	if r.Namespace == "" {
		r.Namespace = "slipway-builds"
		if ns, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			r.Namespace = strings.TrimSpace(string(ns))
		}
	}
	if r.HelperImage == "" {
		r.HelperImage = defaultHelperImage + ":" + version
	}
	return r, nil
}

// reapPods deletes the stage Pods and Secrets of runs that have ended (an engine
// that died mid-stage left them), once Recover has settled which runs go
// on; it returns how many. Without a cluster (r nil) there is none.
func reapPods(ctx context.Context, r *pods.Runner, st store.Store) (int, error) {
	if r == nil {
		return 0, nil
	}
	return r.Reap(ctx, func(ctx context.Context, id int64) (bool, error) {
		run, err := st.GetRun(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return run.Status.Done(), nil
	})
}
