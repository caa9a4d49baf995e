package triggers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/slipwayci/slipway/pipeline"
)

// RepoFileSource reads a pipeline file from inside a repository at the
// commit being run: a shallow fetch of that one commit into a temporary
// directory, where its objects stay packed as they came. Only the commit,
// the trees on the file's path and the file itself are read out of the
// pack, so a push of huge files costs the engine their compressed size on
// disk for a moment, not their size in memory.
type RepoFileSource struct {
	URL    string
	Path   string          // inside the repository
	Token  string          // optional HTTPS token
	Limits pipeline.Limits // the repository's (repositories[].limits)
}

func (s RepoFileSource) String() string { return s.URL + ":" + s.Path }

// sourceFetchTimeout bounds reading one pipeline file from its repository.
const sourceFetchTimeout = time.Minute

// sourceLoads is how many pipeline files are read from repositories at
// once, engine-wide: each may cost about its commit's largest file in
// memory while its pack is indexed.
var sourceLoads = make(chan struct{}, 4)

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
	ctx, cancel := context.WithTimeout(ctx, sourceFetchTimeout)
	defer cancel()
	select {
	case sourceLoads <- struct{}{}:
		defer func() { <-sourceLoads }()
	case <-ctx.Done():
		return nil, fmt.Errorf("reading %s: waiting for other pipeline files to be read: %w", s, ctx.Err())
	}
	dir, err := os.MkdirTemp("", "slipway-pipeline-source-")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s, err)
	}
	defer os.RemoveAll(dir)
	// Objects above the threshold are read lazily from the pack, never
	// whole: a pipeline file is at most pipeline.MaxFileSize.
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(8*cache.MiByte),
		filesystem.Options{LargeObjectThreshold: pipeline.MaxFileSize})
	repo, err := git.CloneContext(ctx, st, nil, &git.CloneOptions{
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
