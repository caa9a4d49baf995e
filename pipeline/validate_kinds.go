package pipeline

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

// Checks of each stage kind's settings. Only what can be known from the
// file is checked here; what depends on the repository or the cluster
// (a Dockerfile that exists, a symlink that leaves the repo) is the
// stage's own Validate/Run.

func (v *validator) secretName(p *Pipeline, at, name string) {
	if name == "" {
		return
	}
	if _, ok := p.Secrets[name]; !ok {
		v.failf(at, "secret %q is not declared under secrets", name)
	}
}

func (v *validator) auth(p *Pipeline, at string, a Auth) {
	v.secretName(p, at+".token", a.Token)
	v.secretName(p, at+".sshKey", a.SSHKey)
	if a.Token != "" && a.SSHKey != "" {
		v.failf(at, "says both token and sshKey; choose one")
	}
}

// repoPath refuses absolute paths and paths that climb out of the repo.
func (v *validator) repoPath(at, p string) {
	if p == "" || strings.Contains(p, "{{") {
		return
	}
	clean := path.Clean(p)
	if path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") {
		v.failf(at, "%q must be a relative path inside the repository", p)
	}
}

func (v *validator) clone(p *Pipeline, at string, c *CloneSpec) {
	if c.Depth < -1 {
		v.failf(at+".depth", "must be -1 (all history), 0 (the default, 1) or more, found %d", c.Depth)
	}
	v.oneOf(at+".engine", c.Engine, []string{"auto", "go-git", "git"})
	switch {
	case strings.HasPrefix(c.Repo, "-"):
		v.failf(at+".repo", "%q looks like a command-line flag, not a repository URL", c.Repo)
	case c.Repo != "" && !strings.Contains(c.Repo, "{{"):
		if err := CheckRemoteForm(c.Repo); err != nil {
			v.failf(at+".repo", "%v", err)
		}
	}
	v.auth(p, at+".auth", c.Auth)
}

func (v *validator) run(p *Pipeline, at string, r *RunSpec) {
	v.required(at+".image", r.Image)
	if len(r.Commands) == 0 {
		v.failf(at+".commands", "is required: the commands to run, one per item")
	}
	for i, c := range r.Commands {
		if strings.TrimSpace(c) == "" {
			v.failf(fmt.Sprintf("%s.commands[%d]", at, i), "is empty")
		}
	}
	for name := range r.Env {
		if !EnvName.MatchString(name) {
			v.failf(strictyaml.JoinKey(at+".env", name), "%q is not a valid environment variable name", name)
		}
	}
	for i, name := range r.Secrets {
		v.secretName(p, fmt.Sprintf("%s.secrets[%d]", at, i), name)
		if _, clash := r.Env[name]; clash {
			v.failf(fmt.Sprintf("%s.secrets[%d]", at, i), "%s is also set under env; a variable has one value", name)
		}
	}
	v.executor(at, r.Executor, r.Pod)
}

// executor checks a stage's executor (local, the default, or kubernetes)
// and its Pod settings, which only a Pod has.
func (v *validator) executor(at, executor string, pod PodSettings) {
	v.oneOf(at+".executor", executor, []string{"local", "kubernetes"})
	if executor != "kubernetes" && !reflect.DeepEqual(pod, PodSettings{}) {
		v.failf(at+".pod", "pod settings need executor: kubernetes")
	}
	v.pod(at+".pod", pod)
}

func (v *validator) build(p *Pipeline, at string, b *BuildSpec) {
	v.required(at+".image", b.Image)
	v.repoPath(at+".context", b.Context)
	v.repoPath(at+".dockerfile", b.Dockerfile)
	v.executor(at, b.Executor, b.Pod)
	v.auth(p, at+".auth", b.Auth)
	for name := range b.BuildArgs {
		if !EnvName.MatchString(name) {
			v.failf(strictyaml.JoinKey(at+".buildArgs", name), "%q is not a valid build argument name", name)
		}
	}
}

func (v *validator) deploy(p *Pipeline, at string, d *DeploySpec) {
	v.gitops(p, at+".gitops", d.GitOps)
	v.argocd(p, at+".argocd", d.ArgoCD)
}

func (v *validator) gitops(p *Pipeline, at string, g GitOpsSpec) {
	v.required(at+".repo", g.Repo)
	if v.required(at+".path", g.Path) {
		v.repoPath(at+".path", g.Path)
	}
	v.auth(p, at+".auth", g.Auth)
	v.locator(at+".image", g.Image)
}

func (v *validator) locator(at string, loc ImageLocator) {
	ways := 0
	for _, set := range []bool{loc.Kustomize != "", loc.Helm != "" || loc.Key != "", loc.Manifest != "" || loc.Container != ""} {
		if set {
			ways++
		}
	}
	switch {
	case ways != 1:
		v.failf(at, "say where the image goes: exactly one of {kustomize: NAME}, {helm: FILE, key: KEY} or {manifest: FILE, container: NAME}")
	case (loc.Helm == "") != (loc.Key == ""):
		v.failf(at, "a Helm locator needs both helm (the values file) and key")
	case (loc.Manifest == "") != (loc.Container == ""):
		v.failf(at, "a manifest locator needs both manifest (the file) and container")
	}
	v.repoPath(at+".helm", loc.Helm)
	v.repoPath(at+".manifest", loc.Manifest)
}

func (v *validator) argocd(p *Pipeline, at string, a ArgoCDSpec) {
	v.required(at+".app", a.App)
	v.required(at+".server", a.Server)
	v.secretName(p, at+".token", a.Token)
}

func (v *validator) canary(p *Pipeline, at string, c *CanarySpec) {
	if c.Image != "" && !strings.Contains(c.Image, "{{") && !strings.Contains(c.Image, "@sha256:") {
		v.failf(at+".image", "%q: name the image by digest (repository@sha256:…)", c.Image)
	}
	v.gitops(p, at+".gitops", c.GitOps)
	v.locator(at+".stable", c.Stable)
	v.argocd(p, at+".argocd", c.ArgoCD)
	v.required(at+".workloads.stable", c.Workloads.Stable)
	v.required(at+".workloads.canary", c.Workloads.Canary)
	for i, n := range c.Notify {
		np := fmt.Sprintf("%s.notify[%d]", at, i)
		if (n.URL == "") == (n.URLSecret == "") {
			v.failf(np, "set exactly one of url or urlSecret")
		}
		v.secretName(p, np+".urlSecret", n.URLSecret)
		v.oneOf(np+".format", n.Format, []string{"json", "slack"})
		if n.URL != "" && !strings.HasPrefix(n.URL, "http://") && !strings.HasPrefix(n.URL, "https://") {
			v.failf(np+".url", "%q is not an http(s) URL", n.URL)
		}
	}
	v.router(at+".router", c.Router)
	v.steps(at+".steps", c.Steps)
	if c.Interval != 0 && time.Duration(c.Interval) < time.Second {
		v.failf(at+".interval", "%s is shorter than 1s", c.Interval)
	}
	v.oneOf(at+".promotion", c.Promotion, []string{"auto", "manual"})
	v.analysis(at+".analysis", &c.Analysis)
}

func (v *validator) router(at string, r RouterSpec) {
	switch {
	case r.Istio == nil && r.Gateway == nil:
		v.failf(at, "names no router; set istio or gatewayAPI")
	case r.Istio != nil && r.Gateway != nil:
		v.failf(at, "names both istio and gatewayAPI; choose one")
	case r.Istio != nil:
		v.required(at+".istio.virtualService", r.Istio.VirtualService)
		v.required(at+".istio.stableSubset", r.Istio.StableSubset)
		v.required(at+".istio.canarySubset", r.Istio.CanarySubset)
	default:
		v.required(at+".gatewayAPI.httpRoute", r.Gateway.HTTPRoute)
		v.required(at+".gatewayAPI.stableService", r.Gateway.StableService)
		v.required(at+".gatewayAPI.canaryService", r.Gateway.CanaryService)
	}
}

func (v *validator) steps(at string, steps []Step) {
	if len(steps) == 0 {
		v.failf(at, "a canary needs at least one step, e.g. [10, 50, 100]")
		return
	}
	last := 0
	for i, s := range steps {
		sp := fmt.Sprintf("%s[%d]", at, i)
		if s.Pause != nil {
			if s.Weight != 0 || s.Interval != 0 {
				v.failf(sp, "a pause step has no weight or interval")
			}
			continue
		}
		switch {
		case s.Weight < 1 || s.Weight > 100:
			v.failf(sp, "weight %d is outside 1..100", s.Weight)
		case s.Weight <= last:
			v.failf(sp, "weight %d does not increase (the step before is %d); weights must strictly increase", s.Weight, last)
		}
		last = max(last, s.Weight)
		if s.Interval != 0 && time.Duration(s.Interval) < time.Second {
			v.failf(sp+".interval", "%s is shorter than 1s", s.Interval)
		}
	}
}

func (v *validator) analysis(at string, a *AnalysisSpec) {
	for name, n := range map[string]int{
		"failureLimit": a.FailureLimit, "consecutiveErrorLimit": a.ConsecutiveErrorLimit,
		"inconclusiveLimit": a.InconclusiveLimit, "minRequests": a.MinRequests,
	} {
		if n < 0 {
			v.failf(at+"."+name, "must not be negative, found %d", n)
		}
	}
	if a.CheckEvery != 0 && time.Duration(a.CheckEvery) < 100*time.Millisecond {
		v.failf(at+".checkEvery", "%s is shorter than 100ms", a.CheckEvery)
	}
	if a.Confidence != 0 && (a.Confidence < 0.5 || a.Confidence > 0.9999) {
		v.failf(at+".confidence", "%g is outside 0.5..0.9999 (0.99: at most 1 %% of healthy canaries rolled back)", a.Confidence)
	}
	seen := map[string]bool{}
	for i, m := range a.Metrics {
		mp := fmt.Sprintf("%s.metrics[%d]", at, i)
		if v.required(mp+".name", m.Name) && seen[m.Name] {
			v.failf(mp+".name", "duplicate metric name %q", m.Name)
		}
		seen[m.Name] = true
		v.metric(mp, m)
	}
}

func (v *validator) metric(at string, m Metric) {
	set := 0
	for _, s := range []string{m.Builtin, m.Query, m.Alert, m.Requests + m.Bad} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		v.failf(at, "set exactly one of builtin, query, alert, or requests with bad")
		return
	}
	if (m.Requests == "") != (m.Bad == "") || (m.Requests != "" && m.Compare == "" && m.Max == nil) {
		v.failf(at, "requests and bad go together, with compare: stable or a max (counters of one workload's requests and bad requests, over .Workload; the metric is the bad share in percent)")
		return
	}
	v.oneOf(at+".builtin", m.Builtin, Builtins)
	switch {
	case m.Alert != "" && (m.Min != nil || m.Max != nil):
		v.failf(at, "an alert metric fails while the alert fires; it takes no min or max")
	case m.Alert == "" && m.Min == nil && m.Max == nil && m.Compare == "":
		v.failf(at, "set min, max, compare or a combination")
	case m.Min != nil && m.Max != nil && *m.Min > *m.Max:
		v.failf(at, "min %g is above max %g", *m.Min, *m.Max)
	}
	switch {
	case m.Compare != "" && m.Compare != "stable":
		v.failf(at+".compare", "%q is not one of stable", m.Compare)
	case m.Compare != "" && m.Builtin == "" && m.Requests == "":
		v.failf(at+".compare", "compare: stable works with the builtin metrics (request-success-rate: the 5xx share; request-duration: the share slower than slowerThan) or with requests and bad counters of your own")
	case m.Requests != "" && m.Min != nil:
		v.failf(at+".min", "a metric of requests and bad counters is the bad share in percent: hold it to a max, not a min")
	case m.Compare == "" && m.MaxIncrease != "":
		v.failf(at+".maxIncrease", "goes with compare: stable")
	case m.Compare != "" && m.Builtin == "request-duration" && m.SlowerThan <= 0:
		v.failf(at+".slowerThan", "is required to compare latency: the duration (a bucket bound of the histogram, e.g. 500ms) a bad request takes at least")
	case m.Compare != "" && m.Builtin == "request-duration" && (m.Min != nil || m.Max != nil):
		v.failf(at, "compare a latency with the stable or hold its p99 to min/max, in two metrics")
	case m.SlowerThan != 0 && (m.Compare == "" || m.Builtin != "request-duration"):
		v.failf(at+".slowerThan", "goes with builtin: request-duration and compare: stable")
	}
	if _, _, err := parseIncrease(m.MaxIncrease); err != nil {
		v.failf(at+".maxIncrease", "%v", err)
	}
}

func (v *validator) fake(at string, f *FakeSpec) {
	if f.ExitCode < 0 || f.ExitCode > 255 {
		v.failf(at+".exitCode", "must be between 0 and 255, found %d", f.ExitCode)
	}
	for name, list := range map[string][]int{"failOnAttempts": f.FailOnAttempts, "sleepAttempts": f.SleepAttempts} {
		if slices.ContainsFunc(list, func(n int) bool { return n < 1 }) {
			v.failf(at+"."+name, "attempts are numbered from 1")
		}
	}
	for name := range f.Outputs {
		if !outputName.MatchString(name) {
			v.failf(strictyaml.JoinKey(at+".outputs", name), "%q is not a valid output name (letters, digits, _)", name)
		}
	}
}

var (
	labelText = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
	dnsName   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
)

// pod checks a stage's Pod settings as the API server would.
func (v *validator) pod(at string, p PodSettings) {
	if p.ServiceAccount != "" && !dnsName.MatchString(p.ServiceAccount) {
		v.failf(at+".serviceAccount", "%q is not a service account name (lower-case letters, digits, - and .)", p.ServiceAccount)
	}
	if p.MountServiceAccountToken && p.ServiceAccount == "" {
		v.failf(at+".mountServiceAccountToken", "name the serviceAccount whose token to mount")
	}
	for part, list := range map[string]map[string]string{"requests": p.Resources.Requests, "limits": p.Resources.Limits} {
		for name, q := range list {
			key := strictyaml.JoinKey(at+".resources."+part, name)
			v.oneOf(key, name, []string{"cpu", "memory", "ephemeral-storage"})
			if !Quantity.MatchString(q) {
				v.failf(key, "%q is not a quantity (like 500m, 2, 512Mi, 1Gi)", q)
			}
		}
	}
	for k, val := range p.NodeSelector {
		key := strictyaml.JoinKey(at+".nodeSelector", k)
		if !LabelKey.MatchString(k) {
			v.failf(key, "%q is not a label key", k)
		}
		if !labelText.MatchString(val) {
			v.failf(key, "%q is not a label value", val)
		}
	}
	for i, t := range p.Tolerations {
		ti := fmt.Sprintf("%s.tolerations[%d]", at, i)
		if t.Key != "" && !LabelKey.MatchString(t.Key) {
			v.failf(ti+".key", "%q is not a taint key", t.Key)
		}
		if t.Operator != "" {
			v.oneOf(ti+".operator", t.Operator, []string{"Equal", "Exists"})
		}
		if t.Operator == "Exists" && t.Value != "" {
			v.failf(ti+".value", "operator Exists takes no value")
		}
		if !labelText.MatchString(t.Value) {
			v.failf(ti+".value", "%q is not a taint value", t.Value)
		}
		if t.Effect != "" {
			v.oneOf(ti+".effect", t.Effect, []string{"NoSchedule", "PreferNoSchedule", "NoExecute"})
		}
	}
}
