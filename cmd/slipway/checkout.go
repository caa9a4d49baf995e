package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages/kinds/clone"
)

// newCheckoutCmd is the init container of a stage's Pod (executor:
// kubernetes): it fetches one commit into a directory with go-git, the
// credentials coming from the environment (SLIPWAY_GIT_USERNAME,
// SLIPWAY_GIT_TOKEN, SLIPWAY_GIT_SSH_KEY, which the Pod reads from the
// attempt's Secret), never from its arguments.
func newCheckoutCmd() *cobra.Command {
	var req clone.Request
	cmd := &cobra.Command{
		Use:    "checkout --repo URL --ref REF --sha COMMIT --dir DIR",
		Short:  "Fetch one commit into a directory (the init container of a stage's Pod)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := clone.CheckRemoteURL(req.URL); err != nil {
				return err
			}
			if !pipeline.IsCommitID(req.SHA) {
				return fmt.Errorf("--sha %q is not a commit id", req.SHA)
			}
			ref, err := pipeline.NormalizeRef(req.Ref, "main")
			if err != nil {
				return fmt.Errorf("--ref: %w", err)
			}
			if req.Ref, req.Dir = ref, filepath.Clean(req.Dir); !filepath.IsAbs(req.Dir) {
				return fmt.Errorf("--dir %q is not an absolute path", req.Dir)
			}
			req.Depth = 1
			req.Auth = clone.Auth{Username: os.Getenv("SLIPWAY_GIT_USERNAME"), Token: os.Getenv("SLIPWAY_GIT_TOKEN"), SSHKey: os.Getenv("SLIPWAY_GIT_SSH_KEY")}
			say := func(format string, args ...any) { fmt.Fprintf(cmd.OutOrStdout(), "slipway: "+format+"\n", args...) }
			say("fetching %s at %s", req.Ref, req.SHA)
			sha, err := clone.GoGit{}.Clone(cmd.Context(), req, say)
			if err != nil {
				return clone.Redact(err, req)
			}
			say("checked out %s", sha)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.URL, "repo", "", "repository URL, without credentials")
	f.StringVar(&req.Ref, "ref", "", "refs/heads/… or refs/tags/…")
	f.StringVar(&req.SHA, "sha", "", "the commit")
	f.StringVar(&req.Dir, "dir", "", "where to check it out")
	return cmd
}
