package engineconfig

import (
	"fmt"
	"net"

	"github.com/slipwayci/slipway/pipeline"
)

// The settings of the stages' tools and cluster: where Trivy and the
// stage Pods' cluster are (the Prometheus address is a field of Config).

// TrivyConfig is how scan stages run Trivy: as a client of a Trivy
// server holding the vulnerability database, or on their own with a
// database in Cache.
type TrivyConfig struct {
	// Server is the URL of a `trivy server`; unset, each scan runs Trivy
	// alone with the database in Cache.
	Server string              `yaml:"server"`
	Token  *pipeline.SecretRef `yaml:"token"` // the server's token
	// Cache is Trivy's cache directory (image layers, and the database
	// when scanning alone); default trivy-cache in the tools directory.
	Cache string `yaml:"cache"`
	// Offline: scan with the database in Cache and never download one.
	Offline bool `yaml:"offline"`
}

// KubernetesConfig is where stages with executor: kubernetes run their
// Pods. Without kubeconfig, and outside a cluster, there is no cluster and
// such stages fail saying so.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file (beside the config when relative);
	// in a cluster the engine's own service account is used when unset.
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace holds the stage Pods; default the engine's own namespace
	// in a cluster, else slipway-builds.
	Namespace string `yaml:"namespace"`
	// HelperImage is the image whose `slipway checkout` fetches the
	// commit into a stage's Pod; default this release's own image.
	HelperImage string `yaml:"helperImage"`
	// KanikoImage is the executor image of builds run as Pods.
	KanikoImage string `yaml:"kanikoImage"`
	// ServiceAccount is the stage Pods' service account;
	// ServiceAccounts the others a pipeline may name (and a repository's
	// serviceAccounts grant).
	ServiceAccount  string   `yaml:"serviceAccount"`
	ServiceAccounts []string `yaml:"serviceAccounts"`
	// PullSecret is the Secret holding the registry credentials the Pods
	// pull their images with.
	PullSecret string `yaml:"pullSecret"`
	// Fence is an address (host:port, or api-server) the build
	// namespace's NetworkPolicies refuse: each Pod waits until it is
	// refused before anything of its stage runs.
	Fence string `yaml:"fence"`
}

// settings checks where the stages' tools and cluster are.
func (v *checker) settings(c *Config) {
	if c.Prometheus != "" {
		v.httpURL("prometheus", c.Prometheus)
	}
	t := c.Trivy
	if t.Server != "" {
		v.httpURL("trivy.server", t.Server)
	}
	if t.Token != nil {
		v.ref("trivy.token", *t.Token)
		if t.Server == "" {
			v.failf("trivy.token", "is the token of a Trivy server; set trivy.server too")
		}
	}
	if t.Offline && t.Server != "" {
		v.failf("trivy.offline", "scans with a database of its own; a Trivy server holds it instead (set one of offline, server)")
	}
	k := c.Kubernetes
	for at, name := range map[string]string{"kubernetes.namespace": k.Namespace, "kubernetes.serviceAccount": k.ServiceAccount, "kubernetes.pullSecret": k.PullSecret} {
		if name != "" && !dnsName.MatchString(name) {
			v.failf(at, "%q is not a Kubernetes name (lower-case letters, digits, '-' and '.')", name)
		}
	}
	for i, name := range k.ServiceAccounts {
		if !dnsName.MatchString(name) {
			v.failf(fmt.Sprintf("kubernetes.serviceAccounts[%d]", i), "%q is not a Kubernetes name (lower-case letters, digits, '-' and '.')", name)
		}
	}
	if k.Fence != "" && k.Fence != "api-server" {
		if _, port, err := net.SplitHostPort(k.Fence); err != nil || port == "" {
			v.failf("kubernetes.fence", "%q is neither host:port nor api-server", k.Fence)
		}
	}
}

// TrivyToken reads the Trivy server's token the config references ("" when
// it references none).
func (c *Config) TrivyToken(lookupEnv func(string) (string, bool)) (string, error) {
	if c.Trivy.Token == nil {
		return "", nil
	}
	return c.ReadSecret("trivy token", *c.Trivy.Token, lookupEnv)
}

// Path is a path the config names, made absolute beside the config file
// ("" stays "").
func (c *Config) Path(path string) string {
	if path == "" {
		return ""
	}
	return c.beside(path)
}
