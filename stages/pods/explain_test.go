package pods

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExplainPod(t *testing.T) {
	t.Parallel()
	pod := func(spec corev1.PodSpec, status corev1.PodStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "order-service-v2-abc"}, Spec: spec, Status: status}
	}
	onNode := corev1.PodSpec{NodeName: "n1"}
	cs := func(s corev1.ContainerStatus) corev1.PodStatus {
		s.Name, s.Image = "order-service", "reg/order-service@sha256:1"
		return corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{s}}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"unschedulable", pod(corev1.PodSpec{}, corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Message: "0/1 nodes are available: 1 Insufficient memory"}}}),
			"cannot be scheduled (0/1 nodes are available: 1 Insufficient memory). Free capacity"},
		{"image pull", pod(onNode, cs(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ImagePullBackOff", Message: "manifest unknown"}}})), "the image cannot be pulled (ImagePullBackOff: manifest unknown). Check that reg/order-service@sha256:1 exists in the registry and that the pod's imagePullSecret"},
		{"crash loop", pod(onNode, cs(corev1.ContainerStatus{RestartCount: 4, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}})), "keeps exiting (CrashLoopBackOff, last exit code 2, restarted 4 times)"},
		{"between two crashes", pod(onNode, cs(corev1.ContainerStatus{RestartCount: 1, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}})), "keeps exiting (CrashLoopBackOff, last exit code 2, restarted 1 times)"},
		{"exited, not yet restarted", pod(onNode, cs(corev1.ContainerStatus{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}})), "keeps exiting (CrashLoopBackOff, last exit code 2, restarted 2 times)"},
		{"first exit", pod(onNode, cs(corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}})),
			"keeps exiting (CrashLoopBackOff, last exit code 1, restarted 0 times)"},
		{"OOM", pod(onNode, cs(corev1.ContainerStatus{RestartCount: 1, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}})), "out of memory (OOMKilled, restarted 1 times). Raise its memory limit"},
		{"not ready", pod(onNode, cs(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})), "running but not ready — its readiness probe fails"},
	}
	for _, tt := range tests {
		got := strings.Join(ExplainPod(tt.pod), "\n")
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	healthy := pod(onNode, cs(corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}))
	if got := ExplainPod(healthy); len(got) != 0 {
		t.Errorf("a healthy pod was explained: %v", got)
	}
}

func TestDescribePod(t *testing.T) {
	t.Parallel()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
			{Name: "side", RestartCount: 1, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
			{Name: "proxy", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			{Name: "new"},
		}}}
	want := "pod web-1: phase Pending; container app waiting (ContainerCreating), restarted 0 times; " +
		"container side exited with code 0 (Completed), restarted 1 times; container proxy running, ready true, restarted 0 times; " +
		"container new not started, restarted 0 times"
	if got := DescribePod(p); got != want {
		t.Errorf("DescribePod:\n got %q\nwant %q", got, want)
	}
	if got := ExplainPod(p); len(got) != 0 {
		t.Errorf("a pod whose containers are still starting was explained: %v", got)
	}
}
