package pods

import (
	"fmt"

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
		switch {
		case w != nil && (w.Reason == "ImagePullBackOff" || w.Reason == "ErrImagePull"):
			out = append(out, fmt.Sprintf("pod %s, container %s: the image cannot be pulled (%s: %s). Check that %s exists in the registry and that the pod's imagePullSecret grants access to it.",
				p.Name, cs.Name, w.Reason, w.Message, cs.Image))
		case last != nil && last.Reason == "OOMKilled":
			out = append(out, fmt.Sprintf("pod %s, container %s: killed for running out of memory (OOMKilled, restarted %d times). Raise its memory limit or find the leak.",
				p.Name, cs.Name, cs.RestartCount))
		case w != nil && w.Reason == "CrashLoopBackOff",
			// Between two crashes the container runs for a moment: caught
			// then, it is still a crash loop, not a failing probe.
			cs.State.Running != nil && !cs.Ready && cs.RestartCount > 0 && last != nil && last.ExitCode != 0:
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
