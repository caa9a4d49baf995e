//go:build tools

// Package tools pins the local cluster's Kubernetes components for
// scripts/tools.sh to build: the control plane (kube-apiserver,
// kube-controller-manager, kube-scheduler) and the node (kubelet,
// kube-proxy).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
