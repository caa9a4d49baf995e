package triggers

import (
	"context"
	"fmt"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
)

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
	Config       engineconfig.Repository
	Secret       string
	Token        string // with Config.Token: reads the repository (its files, its heads)
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
