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

// podRunner is where executor: kubernetes runs stages, as s says (the
// engine config's kubernetes section): in the cluster of s.kubeconfig, or
// in the engine's own cluster through its service account when unset.
// Without a cluster it is nil, and such stages fail saying so.
func podRunner(s settings) (*pods.Runner, error) {
	var cfg *rest.Config
	var err error
	switch {
	case s.kubeconfig != "":
		if cfg, err = clientcmd.BuildConfigFromFlags("", s.kubeconfig); err != nil {
			return nil, fmt.Errorf("reading the kubeconfig %s: %w", s.kubeconfig, err)
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
	r := &pods.Runner{Client: client, Namespace: s.namespace, HelperImage: s.helperImage,
		ServiceAccount: s.serviceAccount, ServiceAccounts: s.serviceAccounts, PullSecret: s.pullSecret, Fence: s.fence}
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
func reapPods(ctx context.Context, r *pods.Runner, st store.Runs) (int, error) {
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
