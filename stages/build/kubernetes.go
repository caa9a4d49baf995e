package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KanikoImage is the official executor image the kubernetes executor runs.
const KanikoImage = "gcr.io/kaniko-project/executor:v1.23.2"

// Kubernetes describes a build as a Pod running the official Kaniko image
// with the same arguments as the local executor. The build context comes
// from an init container that copies it out of a volume the engine fills;
// registry credentials come from a Secret mounted at /kaniko/.docker.
//
// Only the Pod it would create exists so far: running it on a cluster
// (client-go, watching the Pod, streaming its log) is not built yet;
// validation refuses executor: kubernetes, and Build says so too.
type Kubernetes struct {
	Namespace      string
	ServiceAccount string
	ContextVolume  corev1.VolumeSource // where the engine puts build contexts
	CredsSecret    string              // a kubernetes.io/dockerconfigjson Secret; "" for none
}

// ErrNotRunnable is returned by Kubernetes.Build.
var ErrNotRunnable = errors.New("the kubernetes executor cannot run builds yet: only its Pod spec exists; use executor: local")

// Build reports that Pods are not launched yet.
func (k *Kubernetes) Build(ctx context.Context, req Request, log io.Writer) (Result, error) {
	return Result{}, ErrNotRunnable
}

// Pod is the Pod that builds req; name names it. contextSubPath is req's
// context directory inside the context volume.
func (k *Kubernetes) Pod(name, contextSubPath string, req Request) (*corev1.Pod, error) {
	if name == "" || contextSubPath == "" || path.IsAbs(contextSubPath) {
		return nil, fmt.Errorf("kubernetes build pod: need a name and a relative context path")
	}
	dockerfile, err := filepath.Rel(req.ContextDir, req.Dockerfile)
	if err != nil || !filepath.IsLocal(dockerfile) {
		return nil, fmt.Errorf("kubernetes build pod: the Dockerfile must be inside the context (%s)", req.Dockerfile)
	}
	args := executorArgs(req, "/workspace", path.Join("/workspace", filepath.ToSlash(dockerfile)), "/dev/termination-log")
	volumes := []corev1.Volume{{Name: "context", VolumeSource: k.ContextVolume}}
	mounts := []corev1.VolumeMount{{Name: "context", MountPath: "/workspace", SubPath: contextSubPath, ReadOnly: true}}
	if k.CredsSecret != "" {
		volumes = append(volumes, corev1.Volume{Name: "docker-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: k.CredsSecret, Items: []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}}}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "docker-config", MountPath: "/kaniko/.docker", ReadOnly: true})
	}
	falseVal := false
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: k.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "slipway", "slipway.dev/role": "build"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			ServiceAccountName:           k.ServiceAccount,
			AutomountServiceAccountToken: &falseVal,
			Containers: []corev1.Container{{
				Name: "kaniko", Image: KanikoImage, Args: args, VolumeMounts: mounts,
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			Volumes: volumes,
		},
	}, nil
}

var _ Builder = (*Kubernetes)(nil)
