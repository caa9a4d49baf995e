package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/pipeline"
)

func newValidateCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check pipeline files; print every problem as FILE:LINE:COL: field: message",
		Long: `Check pipeline files and print every problem at once, like a compiler, and
that this binary offers every stage kind they name. Exits 0 when every file is valid (silently, unless -v), 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := stageKinds(nil, settings{}) // validating needs no cluster
			if err != nil {
				return err
			}
			bad := 0
			for _, file := range args {
				p, err := pipeline.Load(file)
				if err == nil {
					if err = kinds.Check(p); err != nil {
						err = fmt.Errorf("%s: %w", file, err)
					}
				}
				if err != nil {
					bad++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				if verbose {
					summarize(cmd.OutOrStdout(), p)
				}
			}
			if bad > 0 {
				return exitCode{code: 1, err: fmt.Errorf("%d of %d files invalid", bad, len(args))}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print a summary of each valid file")
	return cmd
}

// summarize prints what a valid pipeline does, in one short paragraph.
func summarize(w io.Writer, p *pipeline.Pipeline) {
	var stages []string
	for _, s := range p.Stages {
		stages = append(stages, s.Name+"("+s.Kind()+")")
	}
	fmt.Fprintf(w, "%s: ok — pipeline %s, %d stages: %s\n", p.File, p.Metadata.Name, len(p.Stages), strings.Join(stages, " → "))
	if push := p.On.Push; push != nil {
		fmt.Fprintf(w, "  on push: branches %v tags %v paths %v\n", push.Branches, push.Tags, push.Paths)
	}
	for _, s := range p.On.Schedule {
		fmt.Fprintf(w, "  on schedule: %s\n", s)
	}
	if p.Concurrency != nil {
		policy := p.Concurrency.Policy
		if policy == "" {
			policy = pipeline.PolicyQueue
		}
		fmt.Fprintf(w, "  concurrency: group %q, %s\n", p.Concurrency.Group, policy)
	}
}

// loadPipeline loads a pipeline file; an invalid one exits with status 1.
func loadPipeline(file string) (*pipeline.Pipeline, error) {
	p, err := pipeline.Load(file)
	var errs pipeline.Errors
	if errors.As(err, &errs) {
		return nil, exitCode{code: 1, err: fmt.Errorf("%s is not a valid pipeline:\n%v", file, err)}
	}
	return p, err
}
