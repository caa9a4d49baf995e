package canary

import (
	"context"
	"fmt"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/gitops"
)

// Router moves and checks the traffic split between stable and canary.
type Router interface {
	// SetWeight edits the split in a checkout of the config repository
	// (root) so the canary gets weight percent; it reports whether a file
	// changed. It writes nothing else.
	SetWeight(root string, canary int) (bool, error)
	// VerifyWeight reads the split that Argo CD reports live and returns
	// the canary's weight.
	VerifyWeight(ctx context.Context) (int, error)
}

// LiveReader returns the live manifest of an object an Argo CD
// application manages (argocd.Client.Live).
type LiveReader func(ctx context.Context, kind, name string) (string, error)

// splitRouter is both routers: an Istio VirtualService with two weighted
// subsets, or a Gateway API HTTPRoute with two weighted backendRefs. They
// differ only in where the destinations are, which gitops.Router knows.
type splitRouter struct {
	appDir string
	split  gitops.Router
	live   LiveReader
}

// NewRouter returns the router spec names, for the app at appDir.
func NewRouter(spec pipeline.RouterSpec, appDir string, live LiveReader) (Router, error) {
	r := &splitRouter{appDir: appDir, live: live}
	switch {
	case spec.Istio != nil:
		r.split = gitops.Router{Kind: "VirtualService", Name: spec.Istio.VirtualService, Stable: spec.Istio.StableSubset, Canary: spec.Istio.CanarySubset}
	case spec.Gateway != nil:
		r.split = gitops.Router{Kind: "HTTPRoute", Name: spec.Gateway.HTTPRoute, Stable: spec.Gateway.StableService, Canary: spec.Gateway.CanaryService}
	default:
		return nil, fmt.Errorf("the canary names no router: set istio or gatewayAPI")
	}
	return r, nil
}

func (r *splitRouter) SetWeight(root string, canary int) (bool, error) {
	return gitops.SetWeights(root, r.appDir, r.split, canary)
}

func (r *splitRouter) VerifyWeight(ctx context.Context) (int, error) {
	manifest, err := r.live(ctx, r.split.Kind, r.split.Name)
	if err != nil {
		return 0, err
	}
	stable, canary, err := gitops.Weights(manifest, r.split)
	if err != nil {
		return 0, err
	}
	if stable+canary != 100 {
		return canary, fmt.Errorf("the live %s %s splits %d/%d, which is not 100 in total", r.split.Kind, r.split.Name, stable, canary)
	}
	return canary, nil
}

func (r *splitRouter) String() string { return r.split.Kind + " " + r.split.Name }

var _ Router = (*splitRouter)(nil)
