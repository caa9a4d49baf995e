package triggers

import (
	"context"
	"fmt"

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

// Source gives the pipeline to run for a commit of a repository.
type Source interface {
	// Load returns the pipeline as of commit sha of ref (sha "" means the
	// tip of ref). It is safe for concurrent use.
	Load(ctx context.Context, ref, sha string) (*pipeline.Pipeline, error)
	// String says where the pipeline comes from, for messages.
	String() string
}

// FileSource is a pipeline file loaded once from the engine's config.
type FileSource struct{ P *pipeline.Pipeline }

func (f FileSource) Load(context.Context, string, string) (*pipeline.Pipeline, error) {
	return f.P, nil
}
func (f FileSource) String() string { return f.P.File }

// Repo is a watched repository ready for use: its secret resolved and its
// pipeline sources made.
type Repo struct {
	Config       Repository
	Secret       string
	Sources      []Source
	StatusToken  string // with Config.Status.Token
	StatusAppKey string // with Config.Status.GitHubApp: its private key, PEM
	// Cluster says the engine runs Pods: the build and run stages of the
	// repository's pushed pipelines run there (see Executor).
	Cluster bool
}

// String names the repository.
func (r *Repo) String() string { return fmt.Sprintf("%s (%s)", r.Config.Name, r.Config.URL) }

// matches reports whether any of urls is this repository.
func (r *Repo) matches(urls []string) bool {
	want := NormalizeRepoURL(r.Config.URL)
	for _, u := range urls {
		if NormalizeRepoURL(u) == want {
			return true
		}
	}
	return false
}
