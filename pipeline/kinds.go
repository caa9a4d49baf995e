package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

// The settings of each stage kind. String fields are templates rendered
// just before the stage runs (see Render); the comments give each default.

// CloneSpec fetches the triggering commit.
type CloneSpec struct {
	Repo       string `yaml:"repo"`       // default: the repository that triggered the run
	Depth      int    `yaml:"depth"`      // commits of history; default 1; -1 for all
	Submodules bool   `yaml:"submodules"` // default false
	Auth       Auth   `yaml:"auth"`
	// Engine is go-git, git (the git CLI with --filter=blob:none) or auto
	// (the default): the git CLI wherever git is installed — it is the
	// faster and leaner of the two at every depth measured — else go-git.
	Engine string `yaml:"engine"`
}

// UnknownFieldHint tells a file that still sets cliThreshold (auto chose
// the engine by depth once) that it is gone.
func (c *CloneSpec) UnknownFieldHint(key string) string {
	if key == "cliThreshold" {
		return "is no longer used: engine auto picks the git CLI wherever git is installed (at any depth); remove it"
	}
	return "" // the decoder's own message, with its suggestion
}

// Auth names secrets (declared under `secrets:`) used to reach a git
// server or a registry.
type Auth struct {
	Token    string `yaml:"token"`    // secret name: an HTTPS token
	SSHKey   string `yaml:"sshKey"`   // secret name: a private key
	Username string `yaml:"username"` // for token auth; default "x-access-token"
}

// BuildSpec builds and pushes an image with Kaniko.
type BuildSpec struct {
	Context    string            `yaml:"context"`    // directory inside the repo; default "."
	Dockerfile string            `yaml:"dockerfile"` // relative to context; default "Dockerfile"
	Image      string            `yaml:"image"`      // destination repository, required
	Tag        string            `yaml:"tag"`        // default "{{ .Run.ShortSHA }}"
	Target     string            `yaml:"target"`
	BuildArgs  map[string]string `yaml:"buildArgs"`
	Cache      bool              `yaml:"cache"`
	CacheRepo  string            `yaml:"cacheRepo"` // default <image>/cache
	Insecure   bool              `yaml:"insecure"`  // plain HTTP registry (loopback only)
	Executor   string            `yaml:"executor"`  // local (default) or kubernetes
	Auth       Auth              `yaml:"auth"`
	Pod        PodSettings       `yaml:"pod"` // with executor: kubernetes
}

// RunSpec runs commands in an image, in the checkout (a test suite before
// the build, a linter): the run's commit at the working directory.
type RunSpec struct {
	Image    string            `yaml:"image"`    // required; needs /bin/sh
	Commands []string          `yaml:"commands"` // run in order by /bin/sh; the first that fails fails the stage
	Env      map[string]string `yaml:"env"`      // beside the pipeline's env
	Secrets  []string          `yaml:"secrets"`  // secrets (declared under secrets:) given as environment variables of the same name
	Executor string            `yaml:"executor"` // local (default: the engine's sandbox, in the image's filesystem) or kubernetes (a Pod)
	Pod      PodSettings       `yaml:"pod"`
}

// PodSettings place and size a stage's Pod (executor: kubernetes). The
// namespace is the engine's, never a pipeline's; a service account is
// the engine's default unless the pipeline names one the engine allows
// (SLIPWAY_POD_SERVICE_ACCOUNTS), and its token is mounted only when
// asked.
type PodSettings struct {
	Resources                PodResources      `yaml:"resources"`
	NodeSelector             map[string]string `yaml:"nodeSelector"`
	Tolerations              []Toleration      `yaml:"tolerations"`
	ServiceAccount           string            `yaml:"serviceAccount"`
	MountServiceAccountToken bool              `yaml:"mountServiceAccountToken"`
}

// PodResources are quantities as Kubernetes writes them (500m, 1Gi) by
// resource name (cpu, memory, ephemeral-storage).
type PodResources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

// Toleration lets a stage's Pod onto tainted nodes.
type Toleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"` // Equal (default) or Exists
	Value    string `yaml:"value"`
	Effect   string `yaml:"effect"` // NoSchedule, PreferNoSchedule, NoExecute; "" for all
}

// ScanSpec scans the image just built with Trivy.
type ScanSpec struct {
	Image         string   `yaml:"image"`  // default: the previous build stage's image by digest
	FailOn        []string `yaml:"failOn"` // severities that fail the stage; default [CRITICAL]
	IgnoreUnfixed bool     `yaml:"ignoreUnfixed"`
	IgnoreFile    string   `yaml:"ignoreFile"` // in the repo; default .trivyignore when present
	SBOM          bool     `yaml:"sbom"`       // also write a CycloneDX SBOM
	Insecure      bool     `yaml:"insecure"`   // plain-HTTP registry (loopback only)
	Auth          Auth     `yaml:"auth"`       // registry credentials
}

// Severities Trivy reports, most severe first.
var Severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// DeploySpec writes the image into the GitOps repo and has Argo CD sync it.
type DeploySpec struct {
	Image  string     `yaml:"image"` // repository@sha256:…; default: the image an earlier stage pushed
	GitOps GitOpsSpec `yaml:"gitops"`
	ArgoCD ArgoCDSpec `yaml:"argocd"`
}

// GitOpsSpec locates the app in the config repository.
type GitOpsSpec struct {
	Repo   string       `yaml:"repo"`
	Branch string       `yaml:"branch"` // default main
	Path   string       `yaml:"path"`
	Image  ImageLocator `yaml:"image"`
	Auth   Auth         `yaml:"auth"`
}

// ImageLocator says where under the app's path the canary image is
// written; exactly one way is set.
type ImageLocator struct {
	Kustomize string `yaml:"kustomize"` // the name of an images: entry of kustomization.yaml
	Helm      string `yaml:"helm"`      // a values file …
	Key       string `yaml:"key"`       // … and the dotted key of the value holding repository@digest
	Manifest  string `yaml:"manifest"`  // a manifest file …
	Container string `yaml:"container"` // … and the container whose image is set
}

// ArgoCDSpec names the Argo CD application and how to reach Argo CD.
type ArgoCDSpec struct {
	App       string   `yaml:"app"`
	Server    string   `yaml:"server"`    // host:port
	Token     string   `yaml:"token"`     // secret name
	PlainText bool     `yaml:"plainText"` // a server run with --insecure (no TLS)
	Insecure  bool     `yaml:"insecure"`  // TLS without verification
	Timeout   Duration `yaml:"timeout"`   // to Synced and Healthy; default 5m
}

// CanarySpec shifts traffic in weighted steps under analysis.
type CanarySpec struct {
	Image     string       `yaml:"image"`     // repository@sha256:…; default: the image an earlier stage pushed
	GitOps    GitOpsSpec   `yaml:"gitops"`    // the config repo; image: where the canary workload's image is
	Stable    ImageLocator `yaml:"stable"`    // where the stable workload's image is
	ArgoCD    ArgoCDSpec   `yaml:"argocd"`    // the Argo CD application holding both and the router
	Workloads Workloads    `yaml:"workloads"` // what the analysis queries are about
	Notify    []Notify     `yaml:"notify"`
	Router    RouterSpec   `yaml:"router"`
	Steps     []Step       `yaml:"steps"`
	Interval  Duration     `yaml:"interval"`
	Promotion string       `yaml:"promotion"` // auto (default) or manual
	Analysis  AnalysisSpec `yaml:"analysis"`
}

// Workloads names the stable and canary workloads (Deployments) and their
// namespace, as the mesh's metrics label them.
type Workloads struct {
	Namespace string `yaml:"namespace"` // default "default"
	Stable    string `yaml:"stable"`
	Canary    string `yaml:"canary"`
}

// Notify is where release events (started, promoted, rolled back, paused)
// are posted.
type Notify struct {
	URL       string `yaml:"url"`
	URLSecret string `yaml:"urlSecret"` // a secret holding the URL (Slack webhook URLs are secrets)
	Format    string `yaml:"format"`    // json (default) or slack
}

// RouterSpec names exactly one traffic router.
type RouterSpec struct {
	Istio   *IstioRouter   `yaml:"istio"`
	Gateway *GatewayRouter `yaml:"gatewayAPI"`
}

// IstioRouter splits traffic between two subsets of a VirtualService.
type IstioRouter struct {
	VirtualService string `yaml:"virtualService"`
	StableSubset   string `yaml:"stableSubset"`
	CanarySubset   string `yaml:"canarySubset"`
}

// GatewayRouter splits traffic between two backendRefs of an HTTPRoute.
type GatewayRouter struct {
	HTTPRoute     string `yaml:"httpRoute"`
	StableService string `yaml:"stableService"`
	CanaryService string `yaml:"canaryService"`
}

// Step is one canary step: a weight (written as a bare number), optionally
// with its own interval, or a pause for a person (or for a duration).
type Step struct {
	Weight   int      `yaml:"weight"`
	Interval Duration `yaml:"interval"`
	Pause    *Pause   `yaml:"pause"`
}

// Pause holds the canary; without a duration it waits for a person.
type Pause struct {
	Duration Duration `yaml:"duration"`
}

// UnmarshalStrictYAML accepts `25` as well as `{weight: 25, interval: 2m}`.
func (s *Step) UnmarshalStrictYAML(v *strictyaml.Value) {
	if v.IsScalar() {
		v.Decode(&s.Weight)
		return
	}
	type plain Step
	v.Decode((*plain)(s))
}

// AnalysisSpec decides, from Prometheus, whether a step passed.
type AnalysisSpec struct {
	FailureLimit          int    `yaml:"failureLimit"`          // default 1
	ConsecutiveErrorLimit int    `yaml:"consecutiveErrorLimit"` // default 3
	InconclusiveLimit     int    `yaml:"inconclusiveLimit"`     // default 3
	MinRequests           int    `yaml:"minRequests"`
	Prometheus            string `yaml:"prometheus"` // address; default from the engine config
	// CheckEvery is how often metrics compared with the stable are checked
	// within a step (default: Prometheus's scrape interval of the target, else 1s).
	CheckEvery Duration `yaml:"checkEvery"`
	// Confidence is how sure a comparison with the stable must be before it
	// rolls back (default 0.99: at most 1 % of healthy canaries rolled back).
	Confidence float64  `yaml:"confidence"`
	Metrics    []Metric `yaml:"metrics"`
}

// Builtin metrics.
var Builtins = []string{"request-success-rate", "request-duration"}

// Metric is one analysis query with its bounds; exactly one of Builtin,
// Query and Alert is set.
type Metric struct {
	Name    string   `yaml:"name"`
	Builtin string   `yaml:"builtin"`
	Query   string   `yaml:"query" slipway:"late"` // sees .App .Namespace .Canary .Stable .Interval
	Alert   string   `yaml:"alert"`
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
	// Compare: stable judges the canary against the stable workload over
	// the same time (request-success-rate: its 5xx share; request-duration:
	// its share of requests slower than SlowerThan), continuously;
	// MaxIncrease is the tolerated increase of the bad share: relative,
	// e.g. "10%" (default 0%), or absolute in percentage points, "0.5pp".
	Compare     string `yaml:"compare"`
	MaxIncrease string `yaml:"maxIncrease"`
	// SlowerThan (request-duration compared with the stable): a request
	// this slow or slower is a bad one; a bucket bound of the histogram.
	SlowerThan Duration `yaml:"slowerThan"`
	// Requests and Bad count a metric of your own: two PromQL counters
	// (sums) of one workload's requests and its bad ones, templates over
	// .Workload (the canary's or the stable's), .Namespace and .App. The
	// metric is the canary's bad share in percent, compared with the
	// stable's (compare: stable), held to max, or both; either is checked
	// continuously.
	Requests string `yaml:"requests" slipway:"late"`
	Bad      string `yaml:"bad" slipway:"late"`
	// DryRun: the metric is measured, charted and explained like any
	// other, and never changes the release's outcome.
	DryRun bool `yaml:"dryRun"`
}

// Tolerance is how much worse than the stable's the canary's bad share
// may be: relative ("10%": ratio 1.1 times the stable's share) or absolute
// ("0.5pp", percentage points: margin 0.005 above it, absolute true).
// MaxIncrease is assumed valid (see validation).
func (m Metric) Tolerance() (ratio, margin float64, absolute bool) {
	v, absolute, _ := parseIncrease(m.MaxIncrease)
	if absolute {
		return 1, v / 100, true
	}
	return 1 + v/100, 0, false
}

// parseIncrease reads "10%" (relative) or "0.5pp" (percentage points,
// absolute); "" is 0 %.
func parseIncrease(s string) (v float64, absolute bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	num, relative := strings.CutSuffix(strings.TrimSpace(s), "%")
	num, absolute = strings.CutSuffix(num, "pp")
	v, err = strconv.ParseFloat(strings.TrimSpace(num), 64)
	limit := 10000.0
	if absolute {
		limit = 99
	}
	if relative == absolute || err != nil || v < 0 || v > limit || math.IsNaN(v) {
		return 0, false, fmt.Errorf("%q is neither a percentage from 0%% to 10000%% (relative to the stable's share, e.g. 10%%) nor percentage points from 0pp to 99pp (added to it, e.g. 0.5pp)", s)
	}
	return v, absolute, nil
}

// FakeSpec is the scripted stand-in kind, for tests and the demo: it
// writes log lines, waits, fails on chosen attempts and sets outputs, and
// does nothing else.
type FakeSpec struct {
	Log            []string          `yaml:"log"`
	Sleep          Duration          `yaml:"sleep"`
	SleepAttempts  []int             `yaml:"sleepAttempts"` // default: every attempt sleeps
	ExitCode       int               `yaml:"exitCode"`      // non-zero fails every attempt
	FailOnAttempts []int             `yaml:"failOnAttempts"`
	Retryable      bool              `yaml:"retryable"` // failures may be retried
	Outputs        map[string]string `yaml:"outputs"`
}
