package kubenode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// HostVolume makes dir, a directory of this machine, the
// PersistentVolume that the claim ns/claim binds (in place of a storage
// provisioner, which the local cluster has none of), with everything in
// it owned by uid — as fsGroup makes a provisioned volume writable by the
// Pod's user (a hostPath volume ignores fsGroup).
func HostVolume(ctx context.Context, kube kubernetes.Interface, dir, ns, claim string, uid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, uid)
	})
	if err != nil {
		return fmt.Errorf("handing %s to uid %d: %w", dir, uid, err)
	}
	kind := corev1.HostPathDirectory
	_, err = kube.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + claim},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &kind}},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the volume of claim %s/%s: %w", ns, claim, err)
	}
	return nil
}
