package pods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/slipwayci/slipway/stages/toollog"
)

// recheck is how often a Pod's state is looked at again without an event
// (for the unschedulable deadline, and a watch that went quiet).
const recheck = 5 * time.Second

// watcher follows one Pod through its containers.
type watcher struct {
	r             *Runner
	name          string
	uid           types.UID
	unschedulable time.Duration
	unscheduled   time.Time // when the Pod was first seen unschedulable
}

// follow waits for container c to start, copies its log to log until it
// ends (rewritten as tool's when tool is set), and for an init container
// (the fence, the checkout) checks that it succeeded.
func (w *watcher) follow(ctx context.Context, c, tool string, log io.Writer) error {
	if _, err := w.until(ctx, func(p *corev1.Pod) (bool, error) {
		st := containerStatus(p, c)
		return st != nil && (st.State.Running != nil || st.State.Terminated != nil), nil
	}); err != nil {
		return err
	}
	stream, err := w.r.Client.CoreV1().Pods(w.r.Namespace).GetLogs(w.name, &corev1.PodLogOptions{Container: c, Follow: true}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("reading the log of pod %s, container %s: %w", w.name, c, err)
	}
	dst := log
	if tool != "" {
		tl := toollog.NewWriter(log, tool)
		defer tl.Close()
		dst = tl
	}
	_, err = io.Copy(dst, stream)
	stream.Close()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the log of pod %s, container %s: %w", w.name, c, err)
	}
	failed, isInit := initFailed[c]
	if !isInit {
		return nil
	}
	st, err := w.terminated(ctx, c)
	if err != nil {
		return err
	}
	if st.ExitCode != 0 {
		return fmt.Errorf("pod %s: %s (%s exit code %d; its log is above)", w.name, failed, c, st.ExitCode)
	}
	return nil
}

// initFailed says what an init container's failure means.
var initFailed = map[string]string{
	"fence":    "its NetworkPolicies did not hold, so nothing of the stage ran",
	"checkout": "fetching the commit failed",
}

// terminated waits for container c to end and returns how.
func (w *watcher) terminated(ctx context.Context, c string) (*corev1.ContainerStateTerminated, error) {
	p, err := w.until(ctx, func(p *corev1.Pod) (bool, error) {
		st := containerStatus(p, c)
		return st != nil && st.State.Terminated != nil, nil
	})
	if err != nil {
		return nil, err
	}
	return containerStatus(p, c).State.Terminated, nil
}

// until watches the Pod until done says so, failing as soon as the Pod
// cannot get there (see problem).
func (w *watcher) until(ctx context.Context, done func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	for {
		p, wi, err := w.r.getAndWatch(ctx, w.name)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("pod %s/%s was deleted while the stage ran", w.r.Namespace, w.name)
		}
		if err != nil {
			return nil, fmt.Errorf("watching pod %s/%s: %w", w.r.Namespace, w.name, err)
		}
		p, err = w.events(ctx, p, wi, tick.C, done)
		wi.Stop()
		if p != nil || err != nil {
			return p, err
		}
	}
}

// getAndWatch reads the Pod and watches it from that version on.
func (r *Runner) getAndWatch(ctx context.Context, name string) (*corev1.Pod, watch.Interface, error) {
	pods := r.Client.CoreV1().Pods(r.Namespace)
	p, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	wi, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: p.ResourceVersion})
	if err != nil {
		return nil, nil, err
	}
	return p, wi, nil
}

// events checks p, then every change the watch brings, until done, a
// problem, or the watch ends (nil, nil: watch again).
func (w *watcher) events(ctx context.Context, p *corev1.Pod, wi watch.Interface, tick <-chan time.Time, done func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	for {
		if p.UID != w.uid {
			return nil, fmt.Errorf("pod %s/%s was replaced while the stage ran", w.r.Namespace, w.name)
		}
		if ok, err := done(p); ok || err != nil {
			return p, err
		}
		if err := w.problem(p); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			if lines := ExplainPod(p); len(lines) > 0 { // what it was stuck on
				return nil, fmt.Errorf("%w: %s", ctx.Err(), lines[0])
			}
			return nil, ctx.Err()
		case <-tick:
		case ev, open := <-wi.ResultChan():
			if !open {
				return nil, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return nil, fmt.Errorf("pod %s/%s was deleted while the stage ran", w.r.Namespace, w.name)
			case watch.Error:
				return nil, nil
			}
			if np, ok := ev.Object.(*corev1.Pod); ok {
				p = np
			}
		}
	}
}

// problem says why the Pod will not run its containers, or nil while it
// still may: failed, unschedulable for longer than allowed, an image that
// cannot be pulled, a container that cannot be created.
func (w *watcher) problem(p *corev1.Pod) error {
	if p.DeletionTimestamp != nil {
		return fmt.Errorf("pod %s/%s is being deleted", w.r.Namespace, w.name)
	}
	if p.Status.Phase == corev1.PodPending && p.Spec.NodeName == "" && unschedulable(p) {
		if w.unscheduled.IsZero() {
			w.unscheduled = time.Now()
		}
		if time.Since(w.unscheduled) >= w.unschedulable {
			return errors.New(firstOr(ExplainPod(p), "pod "+p.Name+" cannot be scheduled"))
		}
		return nil
	}
	for _, st := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if wt := st.State.Waiting; wt != nil {
			switch wt.Reason {
			case "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
				return fmt.Errorf("pod %s, container %s: %s", p.Name, st.Name, explainWaiting(p, st))
			}
		}
	}
	if p.Status.Phase == corev1.PodFailed && len(p.Status.InitContainerStatuses) == 0 && len(p.Status.ContainerStatuses) == 0 {
		return fmt.Errorf("pod %s failed before its containers ran: %s %s", p.Name, p.Status.Reason, p.Status.Message)
	}
	return nil
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func explainWaiting(p *corev1.Pod, st corev1.ContainerStatus) string {
	one := *p
	one.Status.ContainerStatuses = []corev1.ContainerStatus{st}
	one.Status.Phase = corev1.PodRunning
	if lines := ExplainPod(&one); len(lines) > 0 {
		return lines[0]
	}
	return fmt.Sprintf("%s: %s", st.State.Waiting.Reason, st.State.Waiting.Message)
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func firstOr(lines []string, def string) string {
	if len(lines) > 0 {
		return lines[0]
	}
	return def
}

// waitGone waits for the Pod to be removed from the API.
func (r *Runner) waitGone(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, wi, err := r.getAndWatch(ctx, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for the old pod %s/%s to go: %w", r.Namespace, name, err)
		}
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Deleted {
				wi.Stop()
				return nil
			}
		}
		wi.Stop()
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the old pod %s/%s to go: %w", r.Namespace, name, ctx.Err())
		}
	}
}
