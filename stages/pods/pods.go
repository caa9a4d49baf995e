// Package pods runs a stage's work as a Kubernetes Pod (executor:
// kubernetes): the checkout reaches the Pod through an init container
// that fetches the run's exact commit, secrets through a Secret made for
// the attempt (never through the Pod spec), the log streams live into the
// run log, and the exit code and termination message come back. A
// cancelled or timed-out stage deletes its Pod; an engine that died
// mid-stage, or stopped (SIGTERM), leaves its Pod running; the engine that
// resumes the run finds it by its name and attaches to it instead of
// starting the work over.
package pods

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipwayci/slipway/stages"
)

// Labels every Pod and Secret of a stage carries.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelRun       = "slipway.dev/run"
	LabelStage     = "slipway.dev/stage" // a hash of the stage's name: labels are short
	LabelRole      = "slipway.dev/role"
	managedBy      = "slipway"
)

// Workspace is where the checkout is in every container of the Pod: the
// repository's files under Workspace/src.
const Workspace = "/workspace"

// ErrNoCluster is a stage's error when the engine has no cluster to run
// its Pod on.
var ErrNoCluster = errors.New("executor: kubernetes needs a cluster, and this engine has none: start it with SLIPWAY_KUBECONFIG (or in a cluster)")

// Runner creates the Pods of stages in one namespace.
type Runner struct {
	Client    kubernetes.Interface
	Namespace string
	// HelperImage holds the slipway binary: its `slipway checkout` is the
	// init container that fetches the commit.
	HelperImage string
	// ServiceAccount the Pods run as ("" for the namespace's default);
	// its token is mounted only where a Spec asks.
	ServiceAccount string
	// ServiceAccounts are the others a pipeline may name for its stage
	// (Spec.ServiceAccount): the operator's allow-list.
	ServiceAccounts []string
	// PullSecret names the Secret (kubernetes.io/dockerconfigjson) of the
	// engine's registry credentials every stage Pod pulls with; images are
	// pulled for each Pod, never taken from the node's cache.
	PullSecret string
	// Unschedulable is how long a Pod may stay unschedulable before the
	// stage fails (an autoscaler may still add a node); default 2m.
	Unschedulable time.Duration
	// Fence is an address (HOST:PORT, or api-server) the namespace's
	// NetworkPolicies refuse a stage Pod. Set, each Pod's first init
	// container (`slipway fence`) waits until it is refused — until the
	// policies hold for the Pod — so nothing pushed runs before them.
	Fence string
}

// Spec is the work of one stage attempt.
type Spec struct {
	Role string // build, run, scan: a label, and the main container's name
	// Tool names the main container's program when its log lines are a
	// tool's (Kaniko's logrus lines): they are rewritten to read like the
	// run log's (package toollog). "" passes them unchanged.
	Tool    string
	Image   string   // the main container's
	Command []string // "" keeps the image's entrypoint
	Args    []string
	Env     map[string]string // plain values, visible in the Pod spec
	// Secrets become environment variables of the main container, read
	// from the attempt's Secret: their values are never in the Pod spec.
	Secrets map[string]string
	// Files are written into the attempt's Secret too and mounted
	// read-only: path inside the container → content.
	Files      map[string][]byte
	WorkingDir string    // default Workspace/src when Checkout is set
	Checkout   *Checkout // nil: the Pod gets no checkout
	// TerminationMessagePath is where the main container writes what it
	// hands back (a digest); default /dev/termination-log.
	TerminationMessagePath string
	Resources              corev1.ResourceRequirements
	NodeSelector           map[string]string
	Tolerations            []corev1.Toleration
	// ServiceAccount is the pipeline's choice among the Runner's
	// ServiceAccounts ("": the Runner's own).
	ServiceAccount      string
	MountServiceAccount bool // mount the service account's token
}

// Outcome is how the main container ended.
type Outcome struct {
	Pod      string
	ExitCode int32
	Reason   string // the kubelet's: Completed, Error, OOMKilled
	Message  string // the termination message
	Attached bool   // the Pod was found running, not created
}

// Run runs spec as the Pod of run's current stage and waits for its main
// container to end. A non-zero exit is an Outcome, not an error; an error
// is a Pod that could not run (not schedulable, image not pulled, the
// checkout failed, out of memory) or ctx ending. The Pod and its Secret
// are deleted when Run returns, unless the engine is shutting down.
func (r *Runner) Run(ctx context.Context, run *stages.Run, spec Spec) (out Outcome, err error) {
	name := PodName(run.ID, run.Stage)
	out.Pod = name
	if sa := spec.ServiceAccount; sa != "" && sa != r.ServiceAccount && !slices.Contains(r.ServiceAccounts, sa) {
		return out, fmt.Errorf("service account %q is not one this engine lets stages use (SLIPWAY_POD_SERVICE_ACCOUNTS: %s)",
			sa, strings.Join(r.ServiceAccounts, ", "))
	}
	pod, attached, err := r.start(ctx, run, name, spec)
	if err != nil {
		return out, err
	}
	out.Attached = attached
	defer func() {
		if stages.ShuttingDown(ctx) {
			// Not cancelled: the engine that takes the run over attaches.
			fmt.Fprintf(run.Log, "slipway: the engine is stopping; pod %s/%s keeps running for the engine that resumes the run\n", r.Namespace, name)
			return
		}
		r.delete(name)
	}()
	if attached {
		fmt.Fprintf(run.Log, "slipway: attaching to pod %s/%s, started %s (the engine restarted while it ran)\n", r.Namespace, name, pod.CreationTimestamp.Format(time.RFC3339))
	} else {
		fmt.Fprintf(run.Log, "slipway: running %s in pod %s/%s\n", spec.Image, r.Namespace, name)
	}
	w := &watcher{r: r, name: name, uid: pod.UID, unschedulable: r.unschedulable()}
	for _, c := range r.initContainers(spec) {
		if err := w.follow(ctx, c, "", run.Log); err != nil {
			return out, stopped(ctx, err)
		}
	}
	if err := w.follow(ctx, spec.Role, spec.Tool, run.Log); err != nil {
		return out, stopped(ctx, err)
	}
	st, err := w.terminated(ctx, spec.Role)
	if err != nil {
		return out, stopped(ctx, err)
	}
	out.ExitCode, out.Reason, out.Message = st.ExitCode, st.Reason, strings.TrimSpace(st.Message)
	if st.Reason == "OOMKilled" {
		return out, fmt.Errorf("pod %s: container %s was killed for running out of memory (OOMKilled, exit code %d): raise its memory limit (resources.limits.memory)", name, spec.Role, st.ExitCode)
	}
	return out, nil
}

// stopped wraps err with ctx's end when ctx is what stopped the Pod.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func (r *Runner) unschedulable() time.Duration {
	if r.Unschedulable > 0 {
		return r.Unschedulable
	}
	return 2 * time.Minute
}

// PodName is the name of the Pod (and Secret) of a run's stage: the same
// on every attempt and every engine, so that an engine taking the run over
// finds it. The stage's name is hashed, since it need not be a DNS label.
func PodName(runID int64, stage string) string {
	return "slipway-" + strconv.FormatInt(runID, 10) + "-" + slug(stage) + "-" + stageHash(stage)
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	s = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 20 {
		s = strings.TrimRight(s[:20], "-")
	}
	if s == "" {
		s = "stage"
	}
	return s
}

func stageHash(stage string) string {
	h := sha256.Sum256([]byte(stage))
	return hex.EncodeToString(h[:5])
}

func labels(run *stages.Run, role string) map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelRun: strconv.FormatInt(run.ID, 10), LabelStage: stageHash(run.Stage), LabelRole: role}
}

// start creates the attempt's Secret and Pod, or finds the Pod a previous
// engine left running.
func (r *Runner) start(ctx context.Context, run *stages.Run, name string, spec Spec) (*corev1.Pod, bool, error) {
	pods := r.Client.CoreV1().Pods(r.Namespace)
	if old, err := pods.Get(ctx, name, metav1.GetOptions{}); err == nil {
		if old.DeletionTimestamp == nil && old.Labels[LabelRun] == strconv.FormatInt(run.ID, 10) && old.Status.Phase != corev1.PodFailed {
			return old, true, nil
		}
		// A Pod of an earlier attempt that ended (or is going): start afresh.
		r.delete(name)
		if err := r.waitGone(ctx, name); err != nil {
			return nil, false, err
		}
	} else if !apierrors.IsNotFound(err) {
		return nil, false, fmt.Errorf("looking for pod %s/%s: %w", r.Namespace, name, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace, Labels: labels(run, spec.Role)},
		Data:       secretData(spec),
	}
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
		if err != nil {
			return nil, false, fmt.Errorf("updating secret %s/%s: %w", r.Namespace, name, err)
		}
	} else if err != nil {
		return nil, false, fmt.Errorf("creating secret %s/%s: %w", r.Namespace, name, err)
	}
	pod, err := pods.Create(ctx, r.pod(run, name, spec), metav1.CreateOptions{})
	if err != nil {
		r.delete(name)
		return nil, false, fmt.Errorf("creating pod %s/%s: %w", r.Namespace, name, err)
	}
	// The Secret goes with the Pod, even if no engine is left to delete it.
	secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
	if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		r.delete(name)
		return nil, false, fmt.Errorf("handing secret %s/%s to its pod: %w", r.Namespace, name, err)
	}
	return pod, false, nil
}

// Secret keys: env-<NAME> for environment variables, file-<n> for files,
// git-<field> for the checkout's credentials.
func secretData(spec Spec) map[string][]byte {
	data := map[string][]byte{}
	for k, v := range spec.Secrets {
		data["env-"+k] = []byte(v)
	}
	for i, p := range slices.Sorted(maps.Keys(spec.Files)) {
		data["file-"+strconv.Itoa(i)] = spec.Files[p]
	}
	if c := spec.Checkout; c != nil {
		for k, v := range map[string]string{"git-username": c.Username, "git-token": c.Token, "git-ssh-key": c.SSHKey} {
			if v != "" {
				data[k] = []byte(v)
			}
		}
	}
	return data
}

// delete removes the Pod and its Secret at once, on a context of its own
// (the stage's may be what ended).
func (r *Runner) delete(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := int64(0)
	bg := metav1.DeletePropagationBackground
	_ = r.Client.CoreV1().Pods(r.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &now, PropagationPolicy: &bg})
	_ = r.Client.CoreV1().Secrets(r.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

// Reap deletes the Pods and Secrets of runs that have ended — what an
// engine that died mid-stage left behind and no engine will attach to,
// including a Secret whose Pod was never created — and returns how many
// attempts it cleared. ended says whether a run has.
func (r *Runner) Reap(ctx context.Context, ended func(ctx context.Context, runID int64) (bool, error)) (int, error) {
	selector := metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + managedBy}
	pods, err := r.Client.CoreV1().Pods(r.Namespace).List(ctx, selector)
	if err != nil {
		return 0, fmt.Errorf("listing the stage pods in %s: %w", r.Namespace, err)
	}
	secrets, err := r.Client.CoreV1().Secrets(r.Namespace).List(ctx, selector)
	if err != nil {
		return 0, fmt.Errorf("listing the stage secrets in %s: %w", r.Namespace, err)
	}
	runs := map[string]string{} // attempt name → its run's label
	for _, p := range pods.Items {
		runs[p.Name] = p.Labels[LabelRun]
	}
	for _, s := range secrets.Items {
		runs[s.Name] = s.Labels[LabelRun]
	}
	n := 0
	for _, name := range slices.Sorted(maps.Keys(runs)) {
		id, err := strconv.ParseInt(runs[name], 10, 64)
		if err != nil {
			continue
		}
		done, err := ended(ctx, id)
		if err != nil {
			return n, err
		}
		if done {
			r.delete(name)
			n++
		}
	}
	return n, nil
}
