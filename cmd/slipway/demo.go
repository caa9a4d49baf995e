package main

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/slipwayci/slipway/pipeline"
)

//go:embed demo.yaml
var demoPipeline []byte

// demoSHA is the commit the demo run pretends to release.
const demoSHA = "9f2c1e47a3b5d6c8e0f1a2b3c4d5e6f7a8b9c0d1"

func newDemoCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the embedded demo pipeline here and say what happened",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pipeline.Parse("demo.yaml (embedded)", demoPipeline)
			if err != nil {
				return fmt.Errorf("the embedded demo pipeline is invalid: %w", err)
			}
			if f.data == "" {
				if f.data, err = os.MkdirTemp("", "slipway-demo-"); err != nil {
					return err
				}
			}
			if f.sha == "" {
				f.sha = demoSHA
			}
			if _, set := os.LookupEnv("SLIPWAY_DEMO_REGISTRY_TOKEN"); !set {
				os.Setenv("SLIPWAY_DEMO_REGISTRY_TOKEN", "demo-token-7f3a9c")
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Slipway demo: pipeline %s, %d stages; data in %s\n\n", p.Metadata.Name, len(p.Stages), f.data)
			err = runLocally(cmd.Context(), p, &f, out, cmd.ErrOrStderr())
			fmt.Fprintf(out, `
What happened:
  - the pipeline was validated, queued in concurrency group deploy-order-service and run
    by the same runner and SQLite store that 'slipway serve' will use;
  - build failed on its first attempt (scripted, retryable) and succeeded on the retry;
  - scan and deploy read build's outputs through templates ({{ .Stages.build.digest }});
  - the registry token was masked in the stored and printed logs;
  - every transition, attempt and log line is in %s/slipway.db.
The stages are stand-ins (kind: fake) until the real clone, build, scan, deploy and
canary kinds land; 'slipway validate configs/examples/*.yaml' checks real pipelines.
`, f.data)
			return err
		},
	}
	f.register(cmd, "")
	return cmd
}
