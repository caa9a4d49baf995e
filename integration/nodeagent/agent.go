// Package nodeagent stands in for the kubelet (and the scheduler) of the
// local cluster, in tests and the demo — it is not a product feature. It
// registers one Ready node, binds every pending Pod to it, runs each
// container's entrypoint from its image (pulled by digest from the local
// registry, unpacked once per digest) as a chrooted process, gives each Pod
// its own loopback address (127.N.x.y, N picked per agent; the process
// gets it as POD_IP),
// probes readiness, restarts containers that exit, and reports Pod status
// — phase, conditions, podIP, container states (ImagePullBackOff,
// CrashLoopBackOff, restarts) — so Deployments become Available and Argo
// CD reports Healthy, or the reason they do not.
package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/slipwayci/slipway/integration/cluster"
)

// NodeName is the one node the agent registers.
const NodeName = "slipway-node"

// Agent runs the Pods of the local cluster.
type Agent struct {
	client kubernetes.Interface
	dir    string
	images *images
	log    *slog.Logger

	mu     sync.Mutex
	pods   map[types.UID]*podRun
	net    int // the agent's own 127.N.0.0/16, so two agents never share an address
	nextIP int
}

// New returns an agent that keeps its images and container logs under dir.
func New(client kubernetes.Interface, dir string, log *slog.Logger) *Agent {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{client: client, dir: dir, images: &images{dir: filepath.Join(dir, "images")}, log: log,
		pods: map[types.UID]*podRun{}, net: 2 + rand.Intn(250), nextIP: 2}
}

// Run registers the node and runs Pods until ctx ends; then it stops every
// container it started.
func (a *Agent) Run(ctx context.Context) error {
	for _, d := range []string{"images", "logs"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := a.registerNode(ctx); err != nil {
		return fmt.Errorf("registering node %s: %w", NodeName, err)
	}
	factory := informers.NewSharedInformerFactory(a.client, 30*time.Second)
	inf := factory.Core().V1().Pods().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.handle(ctx, obj) },
		UpdateFunc: func(_, obj any) { a.handle(ctx, obj) },
		DeleteFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				a.stop(p.UID)
			}
		},
	})
	factory.Start(ctx.Done())
	go a.heartbeat(ctx)
	<-ctx.Done()
	factory.Shutdown()
	a.mu.Lock()
	runs := make([]*podRun, 0, len(a.pods))
	for _, r := range a.pods {
		runs = append(runs, r)
	}
	a.mu.Unlock()
	for _, r := range runs {
		r.stop()
	}
	return nil
}

// Ready reports whether the node object exists and says Ready.
func (a *Agent) Ready(ctx context.Context) bool { return cluster.NodeReady(ctx, a.client, NodeName) }

func (a *Agent) registerNode(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: nodeLabels}}
	if _, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return a.updateNodeStatus(ctx)
}

func (a *Agent) updateNodeStatus(ctx context.Context) error {
	n, err := a.client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "SlipwayNodeAgentReady",
			Message: "the slipway node agent runs pods as local processes", LastHeartbeatTime: now, LastTransitionTime: now}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: NodeName}},
		NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.36.3", OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "slipway-nodeagent://0"},
	}
	_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.updateNodeStatus(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("node heartbeat", "err", err)
			}
		}
	}
}

// handle reacts to a Pod as it is now: bind it, start it, or finish its deletion.
func (a *Agent) handle(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	switch {
	case pod.DeletionTimestamp != nil:
		if pod.Spec.NodeName == NodeName {
			a.stop(pod.UID)
			zero := int64(0)
			err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero,
				Preconditions: &metav1.Preconditions{UID: &pod.UID}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				a.log.Warn("finishing pod deletion", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
		}
	case pod.Spec.NodeName == "" && !fitsNode(pod):
		a.unschedulable(ctx, pod)
	case pod.Spec.NodeName == "":
		err := a.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			a.log.Warn("binding pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	case pod.Spec.NodeName == NodeName:
		a.start(ctx, pod)
	}
}

// nodeLabels are the labels of the agent's node.
var nodeLabels = map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}

// fitsNode is the one scheduling rule the agent applies: the Pod's node
// selector must match the node's labels.
func fitsNode(pod *corev1.Pod) bool {
	for k, v := range pod.Spec.NodeSelector {
		if nodeLabels[k] != v {
			return false
		}
	}
	return true
}

// unschedulable reports, as the scheduler would, that no node fits.
func (a *Agent) unschedulable(ctx context.Context, pod *corev1.Pod) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable {
			return
		}
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"phase": "Pending", "conditions": []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.Now(),
		Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}}})
	if _, err := a.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		a.log.Warn("reporting an unschedulable pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

func (a *Agent) start(ctx context.Context, pod *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, running := a.pods[pod.UID]; running {
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	ip := fmt.Sprintf("127.%d.%d.%d", a.net, a.nextIP/250, 2+a.nextIP%250)
	a.nextIP++
	r := newPodRun(a, pod.DeepCopy(), ip)
	a.pods[pod.UID] = r
	go r.run(ctx)
}

func (a *Agent) stop(uid types.UID) {
	a.mu.Lock()
	r := a.pods[uid]
	delete(a.pods, uid)
	a.mu.Unlock()
	if r != nil {
		r.stop()
	}
}
