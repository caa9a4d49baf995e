// Command localenv starts the local environment by hand — the same
// launcher the tests and the demo use — prints where everything is, and
// tears it all down on Ctrl-C (or SIGTERM).
//
//	go run ./integration/cmd/localenv [-dir DIR] [-argocd=false] [-mesh=false]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/integration/gitea"
	"github.com/slipwayci/slipway/integration/localenv"
)

func main() {
	dir := flag.String("dir", "", "where components keep data and logs (default: a new temporary directory)")
	withArgo := flag.Bool("argocd", true, "start Argo CD")
	withMesh := flag.Bool("mesh", true, "start the mesh proxy and Prometheus")
	withGitea := flag.Bool("gitea", true, "start Gitea")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "slipway-localenv-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("starting the local environment in %s…\n", *dir)
	env, err := localenv.Start(ctx, *dir, localenv.Options{Cluster: true, Mesh: *withMesh, ArgoCD: *withArgo, Gitea: *withGitea})
	if err != nil {
		fmt.Fprintln(os.Stderr, "localenv:", err)
		os.Exit(1)
	}
	defer env.Close()
	for _, t := range env.Timings {
		fmt.Printf("  %-15s up in %s\n", t.Part, t.Took.Round(1e6))
	}
	fmt.Printf("\ngit server     %s\nregistry       %s (base image %s)\nkube-apiserver %s\nkubeconfig     %s\n",
		env.Git.URL, env.Registry.Addr, env.Base, env.Cluster.Server, env.Cluster.Kubeconfig)
	if env.ArgoCD != nil {
		fmt.Printf("argo cd        %s (plain text; account %s token below; admin password %s)\n  %s\n",
			env.ArgoCD.Server, "slipway", env.ArgoCD.AdminPassword, env.ArgoCD.Token)
	}
	if env.Proxy != nil {
		fmt.Printf("mesh proxy     http://%s (route by Host: order-service.NAMESPACE)\nprometheus     %s\n", env.Proxy.Addr, env.Prometheus.URL)
	}
	if env.Gitea != nil {
		fmt.Printf("gitea          %s (admin %s, password %s; API token below)\n  %s\n", env.Gitea.URL, gitea.Admin, env.Gitea.Password, env.Gitea.Token)
	}
	fmt.Printf("logs           %s/*/*.log\n\nCtrl-C stops everything.\n", *dir)
	<-ctx.Done()
	fmt.Println("stopping…")
}
