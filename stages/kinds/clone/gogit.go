package clone

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// GoGit clones with go-git, in-process.
type GoGit struct{}

// pushedRef is where the fetched commit is kept in the checkout.
const pushedRef = "refs/slipway/checkout"

// Clone fetches the commit (by SHA when the server allows it, else through
// the ref) and checks it out, detached.
func (GoGit) Clone(ctx context.Context, req Request, log func(string, ...any)) (string, error) {
	auth, err := goGitAuth(req.Auth)
	if err != nil {
		return "", err
	}
	if err := emptyDir(req.Dir); err != nil {
		return "", fmt.Errorf("preparing %s: %w", req.Dir, err)
	}
	repo, err := git.PlainInit(req.Dir, false)
	if err != nil {
		return "", err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{req.URL}}); err != nil {
		return "", err
	}
	hash, err := fetch(ctx, repo, req, auth, log)
	if err != nil {
		return "", err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
		return "", fmt.Errorf("checking out %s: %w", hash, err)
	}
	if req.Submodules {
		if err := updateSubmodules(ctx, wt, req, auth, log, git.DefaultSubmoduleRecursionDepth); err != nil {
			return "", fmt.Errorf("updating submodules: %w", err)
		}
	}
	return hash.String(), nil
}

// updateSubmodules checks out wt's submodules, and theirs, depth levels
// deep. Credentials go only to submodules at the repository's own scheme
// and host; local paths, file:// and relative URLs (which go-git would
// read from this machine) are refused, as is a repository req.MayFetch
// does not allow.
func updateSubmodules(ctx context.Context, wt *git.Worktree, req Request, auth transport.AuthMethod, log func(string, ...any), depth git.SubmoduleRescursivity) error {
	repoURL := req.URL
	subs, err := wt.Submodules()
	if err != nil {
		return err
	}
	for _, sub := range subs {
		u := sub.Config().URL
		if err := CheckRemoteURL(u); err != nil {
			return fmt.Errorf("submodule %s: %w", sub.Config().Name, err)
		}
		if err := mayFetch(req, sub.Config().Name, u); err != nil {
			return err
		}
		a := auth
		if auth != nil && credentialScope(u) != credentialScope(repoURL) {
			log("submodule %s is at %s: fetched without the credentials, which are for %s only", sub.Config().Name, redactURL(u), credentialScope(repoURL))
			a = nil
		}
		if err := sub.UpdateContext(ctx, &git.SubmoduleUpdateOptions{Init: true, Auth: a}); err != nil {
			return fmt.Errorf("submodule %s: %w", sub.Config().Name, err)
		}
		if depth <= 1 {
			continue
		}
		repo, err := sub.Repository()
		if err != nil {
			return err
		}
		swt, err := repo.Worktree()
		if err != nil {
			return err
		}
		if err := updateSubmodules(ctx, swt, req, auth, log, depth-1); err != nil {
			return err
		}
	}
	return nil
}

// fetch brings the wanted commit into repo and returns its hash.
func fetch(ctx context.Context, repo *git.Repository, req Request, auth transport.AuthMethod, log func(string, ...any)) (plumbing.Hash, error) {
	get := func(src string) error {
		err := repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", Auth: auth, Depth: req.Depth, Tags: git.NoTags,
			RefSpecs: []config.RefSpec{config.RefSpec("+" + src + ":" + pushedRef)}})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil
		}
		return err
	}
	if req.SHA != "" && len(req.SHA) == 40 {
		if err := get(req.SHA); err == nil {
			return plumbing.NewHash(req.SHA), nil
		} else if ctx.Err() != nil {
			return plumbing.ZeroHash, err
		} else {
			log("the server would not send commit %s by its id (%v); fetching %s instead", req.SHA, err, req.Ref)
		}
	}
	if err := get(req.Ref); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetching %s: %w", req.Ref, err)
	}
	ref, err := repo.Reference(pushedRef, true)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if req.SHA == "" {
		return ref.Hash(), nil
	}
	// The commit must be within the fetched history of the ref.
	iter, err := repo.Log(&git.LogOptions{From: ref.Hash()})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer iter.Close()
	for {
		c, err := iter.Next()
		if err != nil {
			break
		}
		if len(req.SHA) <= 40 && c.Hash.String()[:len(req.SHA)] == req.SHA {
			return c.Hash, nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("commit %s is not within %s of %s: increase clone.depth", req.SHA, depthWord(req.Depth), req.Ref)
}

func goGitAuth(a Auth) (transport.AuthMethod, error) {
	switch {
	case a.Token != "":
		return &githttp.BasicAuth{Username: a.Username, Password: a.Token}, nil
	case a.SSHKey != "":
		keys, err := gitssh.NewPublicKeys("git", []byte(a.SSHKey), "")
		if err != nil {
			return nil, fmt.Errorf("reading the SSH key: %w", err)
		}
		return keys, nil
	}
	return nil, nil
}

var _ Cloner = GoGit{}

// mayFetch refuses a submodule whose repository the run may not fetch.
func mayFetch(req Request, name, url string) error {
	if req.MayFetch == nil || req.MayFetch(url) {
		return nil
	}
	return fmt.Errorf("submodule %s is %s: a pipeline read from a repository fetches only the repository itself or what the engine config's cloneFrom lists", name, redactURL(url))
}
