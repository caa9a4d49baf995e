// Command argocd is the part of Argo CD the local cluster runs — the API
// server, the application controller, the repo-server and the git askpass
// helper the repo-server calls — one binary that takes its role from its
// name (argv[0]) as Argo CD's own multi-call binary does, without the CLI,
// Dex, notifications, the ApplicationSet controller and the commit server.
// Built by scripts/tools.sh from this module, which carries Argo CD's own
// replace block; not part of slipway.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	appcontroller "github.com/argoproj/argo-cd/v2/cmd/argocd-application-controller/commands"
	gitaskpass "github.com/argoproj/argo-cd/v2/cmd/argocd-git-ask-pass/commands"
	reposerver "github.com/argoproj/argo-cd/v2/cmd/argocd-repo-server/commands"
	apiserver "github.com/argoproj/argo-cd/v2/cmd/argocd-server/commands"
	"github.com/argoproj/argo-cd/v2/cmd/util"
	"github.com/spf13/cobra"
)

func main() {
	role := filepath.Base(os.Args[0])
	if r := os.Getenv("ARGOCD_BINARY_NAME"); r != "" { // how the repo-server calls its askpass helper
		role = r
	}
	roles := map[string]func() *cobra.Command{
		"argocd-server":                 apiserver.NewCommand,
		"argocd-application-controller": appcontroller.NewCommand,
		"argocd-repo-server":            reposerver.NewCommand,
		"argocd-git-ask-pass":           gitaskpass.NewCommand,
	}
	newCommand, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "argocd: no role %q here (run as argocd-server, argocd-application-controller, argocd-repo-server or argocd-git-ask-pass)\n", role)
		os.Exit(2)
	}
	util.SetAutoMaxProcs(role == "argocd-git-ask-pass")
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
