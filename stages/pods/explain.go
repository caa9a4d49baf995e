package pods

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ExplainPod says, in plain words with a remedy, why a Pod is not serving.
func ExplainPod(p *corev1.Pod) []string {
	var out []string
	if p.Status.Phase == corev1.PodPending && p.Spec.NodeName == "" {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				return []string{fmt.Sprintf("pod %s is Pending: it cannot be scheduled (%s). Free capacity, lower its resource requests, or fix its node selectors and tolerations.", p.Name, c.Message)}
			}
		}
		return []string{fmt.Sprintf("pod %s is Pending: no node has taken it yet. Check the cluster's capacity and the scheduler.", p.Name)}
	}
	for _, cs := range p.Status.ContainerStatuses {
		w, last := cs.State.Waiting, cs.LastTerminationState.Terminated
		if t := cs.State.Terminated; t != nil {
			last = t // it has just exited: the kubelet has not restarted it yet
		}
		switch {
		case w != nil && (w.Reason == "ImagePullBackOff" || w.Reason == "ErrImagePull"):
			out = append(out, fmt.Sprintf("pod %s, container %s: the image cannot be pulled (%s: %s). Check that %s exists in the registry and that the pod's imagePullSecret grants access to it.",
				p.Name, cs.Name, w.Reason, w.Message, cs.Image))
		case last != nil && last.Reason == "OOMKilled":
			out = append(out, fmt.Sprintf("pod %s, container %s: killed for running out of memory (OOMKilled, restarted %d times). Raise its memory limit or find the leak.",
				p.Name, cs.Name, cs.RestartCount))
		case w != nil && w.Reason == "CrashLoopBackOff",
			// Between two crashes the container runs for a moment, or has
			// exited and waits for its restart: caught then, it is still a
			// crash loop, not a failing probe.
			!cs.Ready && last != nil && last.ExitCode != 0 && (cs.RestartCount > 0 || cs.State.Terminated != nil):
			code := int32(-1)
			if last != nil {
				code = last.ExitCode
			}
			out = append(out, fmt.Sprintf("pod %s, container %s: the container keeps exiting (CrashLoopBackOff, last exit code %d, restarted %d times). Read its log for the cause.",
				p.Name, cs.Name, code, cs.RestartCount))
		case cs.State.Running != nil && !cs.Ready:
			out = append(out, fmt.Sprintf("pod %s, container %s: running but not ready — its readiness probe fails. Check the probe's path and port, and what the app answers there.",
				p.Name, cs.Name))
		}
	}
	return out
}

// DescribePod says in one line where a Pod stands when ExplainPod has no
// diagnosis: its phase and each container's state, so that a failure
// still shows what was seen.
func DescribePod(p *corev1.Pod) string {
	parts := []string{"phase " + string(p.Status.Phase)}
	for _, cs := range p.Status.ContainerStatuses {
		st := "not started"
		switch s := cs.State; {
		case s.Waiting != nil:
			st = "waiting (" + s.Waiting.Reason + ")"
		case s.Running != nil:
			st = fmt.Sprintf("running, ready %t", cs.Ready)
		case s.Terminated != nil:
			st = fmt.Sprintf("exited with code %d (%s)", s.Terminated.ExitCode, s.Terminated.Reason)
		}
		parts = append(parts, fmt.Sprintf("container %s %s, restarted %d times", cs.Name, st, cs.RestartCount))
	}
	return fmt.Sprintf("pod %s: %s", p.Name, strings.Join(parts, "; "))
}
