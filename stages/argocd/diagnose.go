package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	corev1 "k8s.io/api/core/v1"

	"github.com/slipwayci/slipway/stages/pods"
)

// Diagnose reads the application's resource tree and its unhealthy Pods
// and explains, one line each, what is wrong and what to do. It returns ""
// when it finds nothing to say, and never fails the caller.
func (c *Client) Diagnose(ctx context.Context, app string) string {
	tree, err := c.apps.ResourceTree(ctx, &application.ResourcesQuery{ApplicationName: &app})
	if err != nil {
		return fmt.Sprintf("\n  (could not read the resource tree: %v)", Redact(err, c.token))
	}
	var lines []string
	for _, n := range tree.Nodes {
		if n.Kind != "Pod" || n.Health == nil || n.Health.Status == "Healthy" {
			continue
		}
		group, version, kind, name, ns := "", "v1", "Pod", n.Name, n.Namespace
		res, err := c.apps.GetResource(ctx, &application.ApplicationResourceRequest{Name: &app, Namespace: &ns,
			ResourceName: &name, Version: &version, Group: &group, Kind: &kind})
		if err != nil {
			lines = append(lines, fmt.Sprintf("pod %s: %s (%s)", name, n.Health.Status, n.Health.Message))
			continue
		}
		var pod corev1.Pod
		if json.Unmarshal([]byte(res.GetManifest()), &pod) != nil {
			continue
		}
		said := pods.ExplainPod(&pod)
		if len(said) == 0 { // nothing to diagnose yet: say what was seen
			said = []string{pods.DescribePod(&pod) + " (Argo CD: " + string(n.Health.Status) + ")"}
		}
		lines = append(lines, said...)
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n  " + strings.Join(lines, "\n  ")
}
