package argocd

import (
	"context"
	"fmt"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
)

// Live returns the live manifest (JSON) of the object kind/name that app
// manages, as Argo CD reads it from the cluster.
func (c *Client) Live(ctx context.Context, app, kind, name string) (string, error) {
	a, err := c.apps.Get(ctx, &application.ApplicationQuery{Name: &app})
	if err != nil {
		return "", fmt.Errorf("reading application %s from Argo CD: %w", app, Redact(err, c.token))
	}
	for _, r := range a.Status.Resources {
		if r.Kind != kind || r.Name != name {
			continue
		}
		got, err := c.apps.GetResource(ctx, &application.ApplicationResourceRequest{Name: &app, Namespace: &r.Namespace,
			ResourceName: &r.Name, Version: &r.Version, Group: &r.Group, Kind: &r.Kind})
		if err != nil {
			return "", fmt.Errorf("reading the live %s %s of %s from Argo CD: %w", kind, name, app, Redact(err, c.token))
		}
		if got.Manifest == nil || *got.Manifest == "" {
			return "", fmt.Errorf("Argo CD has no live %s %s in %s (not created yet, or pruned)", kind, name, app)
		}
		return *got.Manifest, nil
	}
	return "", fmt.Errorf("application %s manages no %s named %s", app, kind, name)
}
