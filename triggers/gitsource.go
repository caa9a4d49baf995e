package triggers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/slipwayci/slipway/pipeline"
)

// RepoFileSource reads a pipeline file from inside a repository at the
// commit being run: a shallow, in-memory fetch of that one commit.
type RepoFileSource struct {
	URL    string
	Path   string          // inside the repository
	Token  string          // optional HTTPS token
	Limits pipeline.Limits // the repository's (repositories[].limits)
}

func (s RepoFileSource) String() string { return s.URL + ":" + s.Path }

// Load fetches ref (shallow) and reads Path at sha — fetching sha itself
// when ref has moved past it.
func (s RepoFileSource) Load(ctx context.Context, ref, sha string) (*pipeline.Pipeline, error) {
	if !strings.HasPrefix(ref, "refs/heads/") && !strings.HasPrefix(ref, "refs/tags/") {
		return nil, fmt.Errorf("reading %s: ref %q is neither a branch nor a tag", s, ref)
	}
	var auth transport.AuthMethod
	if s.Token != "" {
		auth = &githttp.BasicAuth{Username: "x-access-token", Password: s.Token}
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{
		URL: s.URL, ReferenceName: plumbing.ReferenceName(ref), SingleBranch: true, Depth: 1,
		NoCheckout: true, Tags: git.NoTags, Auth: auth,
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: fetching: %w", s, ref, redact(err, s.Token))
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s, err)
	}
	hash := head.Hash()
	if sha != "" && hash.String() != sha {
		if !plumbing.IsHash(sha) {
			return nil, fmt.Errorf("reading %s: %q is not a commit id", s, sha)
		}
		spec := config.RefSpec(sha + ":refs/slipway/pushed")
		err := repo.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Depth: 1, Auth: auth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, fmt.Errorf("reading %s: fetching commit %s: %w", s, sha, redact(err, s.Token))
		}
		hash = plumbing.NewHash(sha)
	}
	return s.read(repo, hash)
}

func (s RepoFileSource) read(repo *git.Repository, hash plumbing.Hash) (*pipeline.Pipeline, error) {
	c, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("reading %s: commit %s: %w", s, hash, err)
	}
	f, err := c.File(s.Path)
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", s, hash.String()[:7], err)
	}
	if f.Size > pipeline.MaxFileSize {
		return nil, fmt.Errorf("reading %s at %s: file is larger than the limit of %d bytes", s, hash.String()[:7], pipeline.MaxFileSize)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, pipeline.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return pipeline.ParseUntrustedWithin(fmt.Sprintf("%s@%s", s, hash.String()[:7]), data, s.Limits)
}

// redact removes a token from an error's text.
func redact(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), token, "***"))
}
