package pods

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

// Checkout is the commit the Pod works on and how to fetch it. The URL
// carries no credentials; Username, Token and SSHKey travel in the
// attempt's Secret.
type Checkout struct {
	URL, Ref, SHA           string
	Username, Token, SSHKey string
}

// Capabilities are all a stage's main container holds, of those a
// container has by default: what Kaniko needs to unpack an image and run
// its RUN steps as their users — own and change any file (CHOWN,
// DAC_OVERRIDE, FOWNER, FSETID), switch users (SETUID, SETGID), keep the
// file capabilities a layer carries (SETFCAP) and stop its own processes
// (KILL) — and what a test suite run as root expects of the same. Not
// NET_RAW (raw packets: spoofing on the node's network), MKNOD,
// SYS_CHROOT, SETPCAP, NET_BIND_SERVICE nor AUDIT_WRITE.
var Capabilities = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETFCAP", "SETGID", "SETUID"}

// pod is the Pod of spec: an init container fetching the checkout into an
// emptyDir, then the main container; nothing secret in it but references
// to the attempt's Secret (also named name).
func (r *Runner) pod(run *stages.Run, name string, spec Spec) *corev1.Pod {
	no := false
	volumes := []corev1.Volume{{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts := []corev1.VolumeMount{{Name: "workspace", MountPath: Workspace}}
	files := slices.Sorted(maps.Keys(spec.Files))
	if len(files) > 0 {
		volumes = append(volumes, corev1.Volume{Name: "files", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}})
		for i, p := range files {
			mounts = append(mounts, corev1.VolumeMount{Name: "files", MountPath: p, SubPath: "file-" + strconv.Itoa(i), ReadOnly: true})
		}
	}
	main := corev1.Container{
		Name: spec.Role, Image: spec.Image, Command: spec.Command, Args: spec.Args,
		Env:                      r.env(name, spec),
		WorkingDir:               spec.WorkingDir,
		VolumeMounts:             mounts,
		Resources:                spec.Resources,
		TerminationMessagePath:   spec.TerminationMessagePath,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		// Pulled each time, with the engine's pull secret: an image on the
		// node (another repository's, pulled with the node's credentials)
		// is not there to be taken without the registry's say.
		ImagePullPolicy: corev1.PullAlways,
		// Root, as Kaniko must be (it unpacks and chowns the image's
		// files), with only the capabilities that takes, and no way to
		// gain more.
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: Capabilities}},
	}
	if main.TerminationMessagePath == "" {
		main.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace, Labels: labels(run, spec.Role)},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			ServiceAccountName:           cmp.Or(spec.ServiceAccount, r.ServiceAccount),
			AutomountServiceAccountToken: &spec.MountServiceAccount,
			EnableServiceLinks:           &no,
			// The runtime's default seccomp profile: no kernel keyrings,
			// no module loading, no ptrace of what is not its own…
			SecurityContext:  &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			ImagePullSecrets: r.pullSecrets(),
			NodeSelector:     spec.NodeSelector,
			Tolerations:      spec.Tolerations,
			Containers:       []corev1.Container{main},
			Volumes:          volumes,
		},
	}
	if c := spec.Checkout; c != nil {
		root := int64(0)
		if p.Spec.Containers[0].WorkingDir == "" {
			p.Spec.Containers[0].WorkingDir = path.Join(Workspace, "src")
		}
		p.Spec.InitContainers = []corev1.Container{{
			Name:            "checkout",
			Image:           r.HelperImage,
			ImagePullPolicy: corev1.PullAlways,
			Args:            []string{"checkout", "--repo", c.URL, "--ref", c.Ref, "--sha", c.SHA, "--dir", path.Join(Workspace, "src")},
			Env: []corev1.EnvVar{
				{Name: "HOME", Value: Workspace},
				secretEnv("SLIPWAY_GIT_USERNAME", name, "git-username"),
				secretEnv("SLIPWAY_GIT_TOKEN", name, "git-token"),
				secretEnv("SLIPWAY_GIT_SSH_KEY", name, "git-ssh-key"),
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "workspace", MountPath: Workspace}},
			// Root, as a checkout on the engine's machine is owned (a
			// build COPYing it records the owner), with no capability:
			// it writes only to the workspace.
			SecurityContext: &corev1.SecurityContext{
				RunAsUser: &root, RunAsGroup: &root, AllowPrivilegeEscalation: &no,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}}
	}
	if r.Fence != "" {
		// First of all: nothing else runs before the policies hold.
		nobody := int64(65534)
		fence := corev1.Container{
			Name:            "fence",
			Image:           r.HelperImage,
			ImagePullPolicy: corev1.PullAlways,
			Args:            []string{"fence", "--refused", r.Fence},
			SecurityContext: &corev1.SecurityContext{
				RunAsUser: &nobody, RunAsGroup: &nobody, AllowPrivilegeEscalation: &no,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}
		p.Spec.InitContainers = append([]corev1.Container{fence}, p.Spec.InitContainers...)
	}
	return p
}

// initContainers names spec's Pod's init containers, in the order they run.
func (r *Runner) initContainers(spec Spec) []string {
	var out []string
	if r.Fence != "" {
		out = append(out, "fence")
	}
	if spec.Checkout != nil {
		out = append(out, "checkout")
	}
	return out
}

func (r *Runner) pullSecrets() []corev1.LocalObjectReference {
	if r.PullSecret == "" {
		return nil
	}
	return []corev1.LocalObjectReference{{Name: r.PullSecret}}
}

func (r *Runner) env(secret string, spec Spec) []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		env = append(env, corev1.EnvVar{Name: k, Value: spec.Env[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Secrets)) {
		v := secretEnv(k, secret, "env-"+k)
		v.ValueFrom.SecretKeyRef.Optional = nil
		env = append(env, v)
	}
	return env
}

// secretEnv is an environment variable read from key of the Secret; an
// absent key leaves it unset.
func secretEnv(name, secret, key string) corev1.EnvVar {
	yes := true
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: &yes}}}
}

// CheckoutOf is the commit the run's clone stage checked out, with the
// credentials its secrets hold.
func CheckoutOf(run *stages.Run) (*Checkout, error) {
	src, err := stages.CheckedOut(run.Outputs)
	if err != nil {
		return nil, err
	}
	c := &Checkout{URL: src.Repo, Ref: src.Ref, SHA: src.SHA}
	if src.TokenSecret != "" {
		c.Username, c.Token = src.Username, run.Secrets[src.TokenSecret]
	}
	if src.SSHKeySecret != "" {
		c.SSHKey = run.Secrets[src.SSHKeySecret]
	}
	return c, nil
}

// Place applies a stage's Pod settings (resources, node selector,
// tolerations, service account and its token) to spec.
func (spec *Spec) Place(p pipeline.PodSettings) error {
	for part, list := range map[string]map[string]string{"requests": p.Resources.Requests, "limits": p.Resources.Limits} {
		rl := corev1.ResourceList{}
		for name, q := range list {
			v, err := resource.ParseQuantity(q)
			if err != nil {
				return fmt.Errorf("pod resources %s %s: %q: %w", part, name, q, err)
			}
			rl[corev1.ResourceName(name)] = v
		}
		if len(rl) == 0 {
			continue
		}
		if part == "requests" {
			spec.Resources.Requests = rl
		} else {
			spec.Resources.Limits = rl
		}
	}
	spec.NodeSelector = p.NodeSelector
	spec.ServiceAccount, spec.MountServiceAccount = p.ServiceAccount, p.MountServiceAccountToken
	for _, t := range p.Tolerations {
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator),
			Value: t.Value, Effect: corev1.TaintEffect(t.Effect)})
	}
	return nil
}
