// Package trivyserver runs the Trivy server of deploy/trivy.yaml in the
// local cluster, on the real node: the manifests as the base ships them,
// with the test's image (the pinned static Trivy), offline (the test
// database, never a download) and the database volume bound to a
// directory of this machine (kubenode.HostVolume).
package trivyserver

import (
	"bytes"
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/slipwayci/slipway/integration/kubenode"
)

// Server is the Trivy server running in the cluster.
type Server struct {
	URL string // http://CLUSTER-IP:4954, as the engine (on this machine) reaches it
}

// Deploy creates the PersistentVolumeClaim, Deployment and Service of the
// trivy server found in manifests (the output of `kustomize build
// deploy/`) with image, a volume holding dbDir (a Trivy cache directory
// with the database in db/), and waits
// for it to be ready. Its namespace and the Secret the token comes from
// must exist.
func Deploy(ctx context.Context, kube kubernetes.Interface, manifests []byte, image, dbDir string) (*Server, error) {
	var claim corev1.PersistentVolumeClaim
	var deploy appsv1.Deployment
	var svc corev1.Service
	if err := pick(manifests, map[string]any{"PersistentVolumeClaim/trivy-db": &claim, "Deployment/trivy": &deploy, "Service/trivy": &svc}); err != nil {
		return nil, err
	}
	ns := deploy.Namespace
	c := &deploy.Spec.Template.Spec.Containers[0]
	c.Image = image
	c.Args = append(c.Args, "--skip-db-update")

	if err := kubenode.HostVolume(ctx, kube, dbDir, ns, claim.Name, int(*deploy.Spec.Template.Spec.SecurityContext.RunAsUser)); err != nil {
		return nil, err
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &claim, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating claim %s: %w", claim.Name, err)
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, &deploy, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating deployment %s: %w", deploy.Name, err)
	}
	created, err := kube.CoreV1().Services(ns).Create(ctx, &svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating service %s: %w", svc.Name, err)
	}
	if err := waitAvailable(ctx, kube, ns, deploy.Name, 2*time.Minute); err != nil {
		return nil, err
	}
	return &Server{URL: fmt.Sprintf("http://%s:%d", created.Spec.ClusterIP, created.Spec.Ports[0].Port)}, nil
}

// pick decodes the objects named kind/name in the multi-document YAML
// into their targets; each must be there.
func pick(manifests []byte, into map[string]any) error {
	for _, doc := range bytes.Split(manifests, []byte("\n---\n")) {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return fmt.Errorf("reading the manifests: %w", err)
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if dst, ok := into[key]; ok {
			if err := yaml.Unmarshal(doc, dst); err != nil {
				return fmt.Errorf("reading %s: %w", key, err)
			}
			delete(into, key)
		}
	}
	for key := range into {
		return fmt.Errorf("the manifests hold no %s", key)
	}
	return nil
}

// waitAvailable waits for the Deployment's Pods to be ready, saying what
// its Pod waits on when they are not.
func waitAvailable(ctx context.Context, kube kubernetes.Interface, ns, name string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Status.ReadyReplicas > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pods, _ := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + name})
			var states []string
			for _, p := range pods.Items {
				for _, st := range p.Status.ContainerStatuses {
					tail := int64(20)
					log, _ := kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: st.Name, TailLines: &tail,
						Previous: st.RestartCount > 0}).DoRaw(ctx)
					states = append(states, fmt.Sprintf("%s: %+v; its log:\n%s", p.Name, st.State, log))
				}
			}
			return fmt.Errorf("deployment %s/%s not ready after %s (%v): %v", ns, name, within, err, states)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
