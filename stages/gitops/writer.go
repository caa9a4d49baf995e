// Package gitops writes changes into a GitOps config repository: clone,
// edit, commit, push — and when someone else pushed in between (a
// non-fast-forward), clone again and re-apply the edit, a bounded number
// of times. An edit that changes nothing makes no commit. Stage kinds that
// commit to the config repo (deploy, canary) share it.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Edit changes files under the checkout's root and reports whether it
// changed anything. It may be called more than once (once per attempt),
// each time on a fresh checkout.
type Edit func(root string) (changed bool, err error)

// Writer commits edits to one branch of one repository.
type Writer struct {
	URL         string
	Branch      string
	Auth        transport.AuthMethod // nil for none
	AuthorName  string
	AuthorEmail string
	MaxAttempts int    // default 4
	WorkRoot    string // where checkouts are made; default os.TempDir()
}

// Result is what a write did.
type Result struct {
	Commit   string // the new commit, or the branch's head when nothing changed
	Changed  bool
	Attempts int
}

// ErrConflict is returned when every attempt lost a race with other pushes.
var ErrConflict = errors.New("the branch kept moving: every push was rejected as non-fast-forward")

// Write applies edit on the branch's head and pushes a commit with message.
func (w *Writer) Write(ctx context.Context, message string, edit Edit) (Result, error) {
	attempts := w.MaxAttempts
	if attempts <= 0 {
		attempts = 4
	}
	for n := 1; n <= attempts; n++ {
		res, err := w.attempt(ctx, message, edit)
		res.Attempts = n
		if errors.Is(err, git.ErrNonFastForwardUpdate) || errors.Is(err, errRejected) {
			continue
		}
		return res, err
	}
	return Result{Attempts: attempts}, fmt.Errorf("pushing to %s %s: %w", w.URL, w.Branch, ErrConflict)
}

var errRejected = errors.New("push rejected")

func (w *Writer) attempt(ctx context.Context, message string, edit Edit) (Result, error) {
	dir, err := os.MkdirTemp(w.WorkRoot, "gitops-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: w.URL, Auth: w.Auth,
		ReferenceName: plumbing.NewBranchReferenceName(w.Branch), SingleBranch: true, Tags: git.NoTags})
	if err != nil {
		return Result{}, fmt.Errorf("cloning the config repository %s (branch %s): %w", w.URL, w.Branch, err)
	}
	head, err := repo.Head()
	if err != nil {
		return Result{}, err
	}
	changed, err := edit(dir)
	if err != nil {
		return Result{}, err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return Result{}, err
	}
	status, err := wt.Status()
	if err != nil {
		return Result{}, err
	}
	if !changed || status.IsClean() {
		return Result{Commit: head.Hash().String()}, nil
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return Result{}, err
	}
	name, email := w.AuthorName, w.AuthorEmail
	if name == "" {
		name, email = "Slipway", "slipway@localhost"
	}
	sig := &object.Signature{Name: name, Email: email, When: time.Now()}
	hash, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return Result{}, fmt.Errorf("committing to the config repository: %w", err)
	}
	err = repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: w.Auth})
	if err != nil {
		if errors.Is(err, git.ErrNonFastForwardUpdate) || isRejected(err) {
			return Result{}, errRejected
		}
		return Result{}, fmt.Errorf("pushing to the config repository %s: %w", w.URL, err)
	}
	return Result{Commit: hash.String(), Changed: true}, nil
}

// isRejected recognizes a server's refusal of a non-fast-forward update.
func isRejected(err error) bool {
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "fetch first", "failed to update ref", "rejected"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
