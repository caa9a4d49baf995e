package main

import (
	"fmt"
	"strings"

	"github.com/slipwayci/slipway/engineconfig"
)

// settings are where the stages' tools and cluster are: the engine
// config's prometheus, trivy and kubernetes sections, then the
// environment variables a container image sets in their place (envSettings;
// `slipway run`, which reads no engine config, has only those).
type settings struct {
	prometheus                              string
	trivyServer, trivyToken, trivyCache     string
	trivyOffline                            bool
	kubeconfig, namespace, helperImage      string
	kanikoImage, serviceAccount, pullSecret string
	fence                                   string
	serviceAccounts                         []string
	registries                              []string // a local build's (nil: every one it names)
}

// configSettings reads the settings of an engine config, then the
// environment's overrides.
func configSettings(c *engineconfig.Config, lookupEnv func(string) (string, bool)) (settings, error) {
	token, err := c.TrivyToken(lookupEnv)
	if err != nil {
		return settings{}, err
	}
	k := c.Kubernetes
	s := settings{
		prometheus:  c.Prometheus,
		trivyServer: c.Trivy.Server, trivyToken: token, trivyCache: c.Path(c.Trivy.Cache), trivyOffline: c.Trivy.Offline,
		kubeconfig: c.Path(k.Kubeconfig), namespace: k.Namespace, helperImage: k.HelperImage, kanikoImage: k.KanikoImage,
		serviceAccount: k.ServiceAccount, serviceAccounts: k.ServiceAccounts, pullSecret: k.PullSecret, fence: k.Fence,
		registries: c.SandboxRegistries(),
	}
	return s, s.fromEnv(lookupEnv)
}

// envSettings is each setting a container image may give as an environment
// variable, over the engine config's (docs/engine-config.md lists them).
var envSettings = []struct {
	name, field string
	set         func(s *settings, v string) error
}{
	{"SLIPWAY_PROMETHEUS", "prometheus", func(s *settings, v string) error { s.prometheus = v; return nil }},
	{"SLIPWAY_TRIVY_SERVER", "trivy.server", func(s *settings, v string) error { s.trivyServer = v; return nil }},
	{"SLIPWAY_TRIVY_TOKEN", "trivy.token", func(s *settings, v string) error { s.trivyToken = v; return nil }},
	{"SLIPWAY_TRIVY_CACHE", "trivy.cache", func(s *settings, v string) error { s.trivyCache = v; return nil }},
	{"SLIPWAY_TRIVY_OFFLINE", "trivy.offline", func(s *settings, v string) error {
		switch v {
		case "1", "true":
			s.trivyOffline = true
		case "0", "false", "":
			s.trivyOffline = false
		default:
			return fmt.Errorf("SLIPWAY_TRIVY_OFFLINE=%q: write 1 or 0", v)
		}
		return nil
	}},
	{"SLIPWAY_KUBECONFIG", "kubernetes.kubeconfig", func(s *settings, v string) error { s.kubeconfig = v; return nil }},
	{"SLIPWAY_POD_NAMESPACE", "kubernetes.namespace", func(s *settings, v string) error { s.namespace = v; return nil }},
	{"SLIPWAY_HELPER_IMAGE", "kubernetes.helperImage", func(s *settings, v string) error { s.helperImage = v; return nil }},
	{"SLIPWAY_KANIKO_IMAGE", "kubernetes.kanikoImage", func(s *settings, v string) error { s.kanikoImage = v; return nil }},
	{"SLIPWAY_POD_SERVICE_ACCOUNT", "kubernetes.serviceAccount", func(s *settings, v string) error { s.serviceAccount = v; return nil }},
	{"SLIPWAY_POD_SERVICE_ACCOUNTS", "kubernetes.serviceAccounts", func(s *settings, v string) error {
		s.serviceAccounts = nil
		for _, sa := range strings.Split(v, ",") {
			if sa = strings.TrimSpace(sa); sa != "" {
				s.serviceAccounts = append(s.serviceAccounts, sa)
			}
		}
		return nil
	}},
	{"SLIPWAY_POD_PULL_SECRET", "kubernetes.pullSecret", func(s *settings, v string) error { s.pullSecret = v; return nil }},
	{"SLIPWAY_POD_FENCE", "kubernetes.fence", func(s *settings, v string) error { s.fence = v; return nil }},
}

// fromEnv applies the environment's overrides: a variable that is set
// replaces the config's value.
func (s *settings) fromEnv(lookupEnv func(string) (string, bool)) error {
	for _, e := range envSettings {
		if v, ok := lookupEnv(e.name); ok {
			if err := e.set(s, v); err != nil {
				return err
			}
		}
	}
	return nil
}
