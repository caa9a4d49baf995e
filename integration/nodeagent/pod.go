package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRun is one Pod this agent runs.
type podRun struct {
	a      *Agent
	pod    *corev1.Pod
	ip     string
	cancel context.CancelFunc
	done   chan struct{}
	start  metav1.Time

	mu     sync.Mutex
	states map[string]*containerState
	// reportMu serializes status reports, so the last one written is
	// always taken from the latest state.
	reportMu sync.Mutex
}

// containerState is what the agent reports of one container.
type containerState struct {
	status corev1.ContainerStatus
	ready  bool
	done   bool // exited for good (restartPolicy Never, or OnFailure after success)
}

func newPodRun(a *Agent, pod *corev1.Pod, ip string) *podRun {
	r := &podRun{a: a, pod: pod, ip: ip, done: make(chan struct{}), start: metav1.Now(), states: map[string]*containerState{}}
	for _, c := range pod.Spec.Containers {
		r.states[c.Name] = &containerState{status: corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	}
	return r
}

func (r *podRun) run(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	defer close(r.done)
	r.report(ctx)
	var wg sync.WaitGroup
	for _, c := range r.pod.Spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runContainer(ctx, c)
		}()
	}
	wg.Wait()
}

func (r *podRun) stop() {
	if r.cancel != nil {
		r.cancel()
	}
	<-r.done
}

// runContainer pulls, starts and restarts one container until ctx ends.
func (r *podRun) runContainer(ctx context.Context, c corev1.Container) {
	backoff := time.Second
	for ctx.Err() == nil {
		img, err := r.a.images.pull(ctx, c.Image)
		if err != nil {
			r.setWaiting(ctx, c.Name, "ImagePullBackOff", err.Error())
			if sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 20*time.Second)
			continue
		}
		began := time.Now()
		exit, err := r.exec(ctx, c, img)
		if ctx.Err() != nil {
			return
		}
		if policy := r.pod.Spec.RestartPolicy; policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && exit == 0) {
			r.setExited(ctx, c.Name, exit, err, began)
			return
		}
		r.setTerminated(ctx, c.Name, img, exit, err, began)
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		if sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, 20*time.Second)
	}
}

// exec runs the container's process chrooted into its image and waits
// for it, probing readiness meanwhile.
func (r *podRun) exec(ctx context.Context, c corev1.Container, img *image) (int, error) {
	argv := append(append([]string{}, img.Config.Entrypoint...), img.Config.Cmd...)
	if len(c.Command) > 0 {
		argv = append(append([]string{}, c.Command...), c.Args...)
	} else if len(c.Args) > 0 {
		argv = append(append([]string{}, img.Config.Entrypoint...), c.Args...)
	}
	if len(argv) == 0 {
		return -1, fmt.Errorf("image %s has no entrypoint and the container no command", c.Image)
	}
	logPath := filepath.Join(r.a.dir, "logs", fmt.Sprintf("%s_%s_%s.log", r.pod.Namespace, r.pod.Name, c.Name))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return -1, err
	}
	defer logf.Close()
	cmd := exec.Command(resolve(img, argv[0]), argv[1:]...)
	cmd.Env = r.env(c, img)
	cmd.Dir = "/"
	if c.WorkingDir != "" {
		cmd.Dir = c.WorkingDir
	} else if img.Config.WorkingDir != "" {
		cmd.Dir = img.Config.WorkingDir
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: img.Root, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("starting %v: %w", argv, err)
	}
	r.setRunning(ctx, c.Name, img)
	probeCtx, stopProbe := context.WithCancel(ctx)
	go r.probe(probeCtx, c)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err = <-waited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			err = <-waited
		}
	}
	stopProbe()
	if cmd.ProcessState != nil {
		return cmd.ProcessState.ExitCode(), nil
	}
	return -1, err
}

// resolve finds argv[0] inside the image, as a shell would.
func resolve(img *image, name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	dirs := []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
	for _, kv := range img.Config.Env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			dirs = strings.Split(p, ":")
		}
	}
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(img.Root, d, name)); err == nil && !fi.IsDir() {
			return path.Join(d, name)
		}
	}
	return name
}

// env is the image's environment, then the container's, with the Pod's
// own fields (downward API) resolved.
func (r *podRun) env(c corev1.Container, img *image) []string {
	vars := map[string]string{"POD_IP": r.ip, "POD_NAME": r.pod.Name, "POD_NAMESPACE": r.pod.Namespace, "HOSTNAME": r.pod.Name}
	order := []string{"POD_IP", "POD_NAME", "POD_NAMESPACE", "HOSTNAME"}
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range img.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			switch e.ValueFrom.FieldRef.FieldPath {
			case "status.podIP":
				v = r.ip
			case "metadata.name":
				v = r.pod.Name
			case "metadata.namespace":
				v = r.pod.Namespace
			}
		}
		set(e.Name, expand(v, vars))
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// expand replaces $(VAR) references, as Kubernetes does in env values.
func expand(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "$("+k+")", v)
	}
	return s
}

// probe runs the container's readiness probe (HTTP GET or TCP) and
// reports changes; a container without one is ready once running.
func (r *podRun) probe(ctx context.Context, c corev1.Container) {
	p := c.ReadinessProbe
	if p == nil || (p.HTTPGet == nil && p.TCPSocket == nil) {
		r.setReady(ctx, c.Name, true)
		return
	}
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	if sleep(ctx, time.Duration(p.InitialDelaySeconds)*time.Second) {
		return
	}
	client := &http.Client{Timeout: time.Duration(max(p.TimeoutSeconds, 1)) * time.Second}
	// As the kubelet does: ready after successThreshold passes in a row
	// (default 1), unready after failureThreshold failures in a row (default 3).
	failureThreshold, successThreshold := max(p.FailureThreshold, 3), max(p.SuccessThreshold, 1)
	if p.FailureThreshold > 0 {
		failureThreshold = p.FailureThreshold
	}
	passes, failures := int32(0), int32(0)
	for {
		ok := false
		if h := p.HTTPGet; h != nil {
			resp, err := client.Get(fmt.Sprintf("http://%s:%s%s", r.ip, portOf(c, h.Port.String()), h.Path))
			if err == nil {
				resp.Body.Close()
				ok = resp.StatusCode >= 200 && resp.StatusCode < 400
			}
		} else if conn, err := (&netDialer{}).dial(r.ip, portOf(c, p.TCPSocket.Port.String())); err == nil {
			conn.Close()
			ok = true
		}
		if ok {
			passes, failures = passes+1, 0
		} else {
			passes, failures = 0, failures+1
		}
		switch {
		case passes >= successThreshold:
			r.setReady(ctx, c.Name, true)
		case failures >= failureThreshold:
			r.setReady(ctx, c.Name, false)
		}
		if sleep(ctx, period) {
			return
		}
	}
}

// portOf turns a named port into its number.
func portOf(c corev1.Container, port string) string {
	for _, p := range c.Ports {
		if p.Name == port {
			return fmt.Sprint(p.ContainerPort)
		}
	}
	return port
}

func (r *podRun) setWaiting(ctx context.Context, name, reason, msg string) {
	r.update(ctx, name, func(s *containerState) {
		s.ready = false
		s.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	})
}

func (r *podRun) setRunning(ctx context.Context, name string, img *image) {
	r.update(ctx, name, func(s *containerState) {
		s.status.ImageID = img.Digest
		s.status.ContainerID = "slipway://" + string(r.pod.UID) + "/" + name
		s.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	})
}

func (r *podRun) setTerminated(ctx context.Context, name string, img *image, exit int, err error, began time.Time) {
	r.update(ctx, name, func(s *containerState) {
		s.ready = false
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		reason := "Error"
		if exit == 0 {
			reason = "Completed"
		}
		s.status.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(exit),
			Reason: reason, Message: msg, StartedAt: metav1.NewTime(began), FinishedAt: metav1.Now(), ContainerID: s.status.ContainerID}}
		s.status.RestartCount++
		s.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s (exit code %d)", name, exit)}}
	})
}

// setExited records a container that will not be restarted.
func (r *podRun) setExited(ctx context.Context, name string, exit int, err error, began time.Time) {
	r.update(ctx, name, func(s *containerState) {
		s.ready, s.done = false, true
		reason, msg := "Completed", ""
		if exit != 0 {
			reason = "Error"
		}
		if err != nil {
			msg = err.Error()
		}
		s.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(exit), Reason: reason,
			Message: msg, StartedAt: metav1.NewTime(began), FinishedAt: metav1.Now(), ContainerID: s.status.ContainerID}}
	})
}

func (r *podRun) setReady(ctx context.Context, name string, ready bool) {
	r.mu.Lock()
	changed := r.states[name].ready != ready
	r.mu.Unlock()
	if changed {
		r.update(ctx, name, func(s *containerState) { s.ready = ready })
	}
}

func (r *podRun) update(ctx context.Context, name string, f func(*containerState)) {
	r.mu.Lock()
	f(r.states[name])
	r.mu.Unlock()
	r.report(ctx)
}

// report writes the Pod's status as the agent knows it.
func (r *podRun) report(ctx context.Context) {
	r.reportMu.Lock()
	defer r.reportMu.Unlock()
	r.mu.Lock()
	allReady, anyRunning, allDone, allSucceeded := true, false, true, true
	var statuses []corev1.ContainerStatus
	for _, c := range r.pod.Spec.Containers {
		s := r.states[c.Name]
		allDone = allDone && s.done
		allSucceeded = allSucceeded && s.done && s.status.State.Terminated != nil && s.status.State.Terminated.ExitCode == 0
		st := s.status
		st.Ready = s.ready
		running := st.State.Running != nil
		st.Started = &running
		anyRunning = anyRunning || running
		allReady = allReady && s.ready
		statuses = append(statuses, st)
	}
	r.mu.Unlock()
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	}
	phase := corev1.PodPending
	switch {
	case allDone && allSucceeded:
		phase, allReady = corev1.PodSucceeded, false
	case allDone:
		phase, allReady = corev1.PodFailed, false
	case anyRunning || allReady:
		phase = corev1.PodRunning
	}
	status := corev1.PodStatus{
		Phase: phase, HostIP: "127.0.0.1", PodIP: r.ip, PodIPs: []corev1.PodIP{{IP: r.ip}}, StartTime: &r.start,
		Conditions: []corev1.PodCondition{cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, allReady), cond(corev1.PodReady, allReady)},
		ContainerStatuses: statuses, QOSClass: corev1.PodQOSBestEffort,
	}
	patch, _ := json.Marshal(map[string]any{"status": status})
	_, err := r.a.client.CoreV1().Pods(r.pod.Namespace).Patch(context.WithoutCancel(ctx), r.pod.Name, types.MergePatchType, patch,
		metav1.PatchOptions{}, "status")
	if err != nil && ctx.Err() == nil {
		r.a.log.Warn("reporting pod status", "pod", r.pod.Namespace+"/"+r.pod.Name, "err", err)
	}
}

// sleep waits d or until ctx ends; it reports whether ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}
