package engineconfig

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/pipeline"
)

// Repository is one watched repository as the engine config declares it.
type Repository struct {
	Name          string              `yaml:"name"`
	URL           string              `yaml:"url"`
	Forge         string              `yaml:"forge"`         // github, gitlab or gitea
	Branch        string              `yaml:"branch"`        // for schedules and manual runs; default main
	WebhookSecret pipeline.SecretRef  `yaml:"webhookSecret"` // HMAC secret (GitHub, Gitea) or token (GitLab)
	Token         *pipeline.SecretRef `yaml:"token"`         // to read pipeline files from a private repository
	Pipelines     []PipelineRef       `yaml:"pipelines"`
	// What the repository's runs are granted (see grants.go): secrets by
	// name, the apps its pipelines may release, other repositories they
	// may clone.
	Secrets   []SecretGrant `yaml:"secrets"`
	Apps      []AppBinding  `yaml:"apps"`
	CloneFrom []string      `yaml:"cloneFrom"`
	// Limits bound what its pipelines may ask of the engine (stages,
	// timeouts, schedules, analysis queries, Pod sizes); zero fields take
	// the defaults.
	Limits pipeline.Limits `yaml:"limits"`
	// NodePools are where its stage Pods may be placed: a pipeline read
	// from the repository may give a Pod the nodeSelector and tolerations
	// of one of these (written out), or none.
	NodePools []NodePool `yaml:"nodePools"`
	// ServiceAccounts are those its stage Pods may run as (and mount the
	// token of): each also in the engine's SLIPWAY_POD_SERVICE_ACCOUNTS.
	ServiceAccounts []string `yaml:"serviceAccounts"`
	// Images are where the images of its run stages come from and where
	// its builds push: registries or registry/path prefixes (placement.go).
	// A pipeline read from the repository may run or push no other.
	Images []string `yaml:"images"`
	// LocalSandbox lets the build and run stages of its pushed pipelines
	// run on the engine's own machine, in its sandbox, when the engine
	// has a cluster (without one they always do): for an engine whose
	// repositories all trust each other, since the sandbox shares the
	// machine that holds every repository's secrets.
	LocalSandbox bool `yaml:"localSandbox"`
	// Status, when set, reports each run's progress as a commit status
	// on the forge (context slipway/<pipeline>).
	Status *StatusConfig `yaml:"status"`
}

// StatusConfig is how the engine reaches a repository's commit status
// API: with a token, or (GitHub) as a GitHub App's installation.
type StatusConfig struct {
	Token     pipeline.SecretRef `yaml:"token"`     // a token allowed to write commit statuses
	GitHubApp *GitHubAppConfig   `yaml:"githubApp"` // instead of token, on GitHub
	API       string             `yaml:"api"`       // default: from the repository URL and forge
}

// GitHubAppConfig names a GitHub App installed on the repository's
// account, with the statuses: write permission.
type GitHubAppConfig struct {
	ID           int64              `yaml:"id"`
	Installation int64              `yaml:"installation"`
	PrivateKey   pipeline.SecretRef `yaml:"privateKey"` // the PEM file GitHub hands out
}

// DefaultBranch is Branch, or main.
func (r *Repository) DefaultBranch() string {
	if r.Branch == "" {
		return "main"
	}
	return r.Branch
}

// PipelineRef names one pipeline of a repository: a file beside the engine
// config (File), or a file inside the repository read at the pushed commit
// (Path). Exactly one is set.
type PipelineRef struct {
	File string `yaml:"file"`
	Path string `yaml:"path"`
}

// SecretGrant gives the runs of one repository one secret — optionally only
// for some refs and events, as GitHub's environments give deploy
// credentials to protected branches only.
type SecretGrant struct {
	Name     string             `yaml:"name"`     // what the pipeline calls it (secrets: [NAME])
	From     pipeline.SecretRef `yaml:"from"`     // where the engine reads it: {env: VAR} or {file: PATH}
	Branches []string           `yaml:"branches"` // globs; with tags, the refs it is granted for (both empty: every ref)
	Tags     []string           `yaml:"tags"`
	Events   []string           `yaml:"events"` // push, tag, schedule, manual; empty: every event
}

// AppBinding is one app a repository's pipelines may release, and where:
// the config-repository paths its deploy and canary stages may write and
// the Argo CD applications they may sync.
type AppBinding struct {
	Name   string       `yaml:"name"`
	GitOps []GitOpsPath `yaml:"gitops"`
	ArgoCD []string     `yaml:"argocd"`
	// Where the engine connects for the app, with the repository's granted
	// credentials: a pipeline read from the repository may name only these
	// (written literally), never a host of its own choosing.
	ArgoCDServer string `yaml:"argocdServer"` // host:port of the Argo CD its applications live on
	// ArgoCDInsecure lets its pipelines reach that server without TLS or
	// without verifying it (argocd.plainText, argocd.insecure): the token
	// goes with the request, so it is the operator's choice.
	ArgoCDInsecure bool     `yaml:"argocdInsecure"`
	Prometheus     string   `yaml:"prometheus"` // an analysis's Prometheus, if not the engine's default
	Notify         []string `yaml:"notify"`     // URL prefixes its canaries may post release events to
}

// GitOpsPath is a directory of a config repository (and everything under it).
type GitOpsPath struct {
	Repo string `yaml:"repo"`
	Path string `yaml:"path"`
}

// NodePool is a place in the cluster the operator lets a repository's
// stage Pods go: nodes selected by labels, with the taints they tolerate.
type NodePool struct {
	Name         string                `yaml:"name"`
	NodeSelector map[string]string     `yaml:"nodeSelector"`
	Tolerations  []pipeline.Toleration `yaml:"tolerations"`
}

// ImagePrefixProblem says what is wrong with an image prefix of the engine
// config, or "".
func ImagePrefixProblem(p string) string {
	host, path, _ := strings.Cut(strings.TrimSuffix(p, "/"), "/")
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return fmt.Sprintf("%q does not start with a registry host (registry.example.com, 127.0.0.1:5000)", p)
	}
	if path != "" {
		if _, err := name.NewRepository(host+"/"+path, name.StrictValidation); err != nil {
			return fmt.Sprintf("%q is not a registry and a repository path: %v", p, err)
		}
	}
	return ""
}
