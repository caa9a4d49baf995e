// Command incluster is a Kubernetes client run as a Pod by the tests: it
// reaches the API server the way Slipway in a cluster does — client-go's
// in-cluster config (the kubernetes Service, the Pod's service-account
// token and CA) — and prints the server's version; then it looks up the
// API server's Service, and a Service that does not exist, by name
// through the cluster DNS.
package main

import (
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func main() {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "incluster:", err)
		os.Exit(1)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "incluster:", err)
		os.Exit(1)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		fmt.Fprintln(os.Stderr, "incluster: asking", cfg.Host, "for its version:", err)
		os.Exit(1)
	}
	fmt.Printf("reached %s: %s\n", cfg.Host, v.GitVersion)
	for _, name := range []string{"kubernetes.default.svc", "no-such-service.default.svc"} {
		addrs, err := net.LookupHost(name)
		if err != nil {
			fmt.Printf("%s: %v\n", name, err)
			continue
		}
		fmt.Printf("%s is %v\n", name, addrs)
	}
}
