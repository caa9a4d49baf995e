package triggers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
)

// Where the code of a pipeline read from a repository runs, and with what:
// its build and run stages run as Pods when the engine has a cluster
// (unless the operator gives the repository the engine's own sandbox),
// only on the repository's node pools, as its service accounts, from
// images under its prefixes.

// holds reports whether pod is placed in the pool: the same selector and
// the same tolerations, in any order.
func holds(n engineconfig.NodePool, pod pipeline.PodSettings) bool {
	if !maps.Equal(n.NodeSelector, pod.NodeSelector) || len(n.Tolerations) != len(pod.Tolerations) {
		return false
	}
	for _, t := range pod.Tolerations {
		if !slices.Contains(n.Tolerations, t) {
			return false
		}
	}
	return true
}

// Executor is where the build and run stages of the repository's pushed
// pipelines that name no executor run: "kubernetes" on an engine with a
// cluster, unless the engine config gives the repository the local
// sandbox; "" (the stage's own default, local) otherwise.
func (r *Repo) Executor() string {
	if r.Cluster && !r.Config.LocalSandbox {
		return "kubernetes"
	}
	return ""
}

// placed checks where an untrusted pipeline's build and run stages run:
// not on the engine's machine when they must run as Pods; in a node pool
// of the repository; as a service account of the repository (whose token
// alone may be mounted: validation wants the account named); a run
// stage's image, the image a build pushes and one a scan names, under one
// of the repository's prefixes, written literally.
func (r *Repo) placed(p *pipeline.Pipeline, fail func(path, format string, args ...any)) {
	for i, st := range p.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		if st.Scan != nil && st.Scan.Image != "" { // else the build's, bound below
			r.image(at+".scan.image", st.Scan.Image, fail)
		}
		pod, podAt, ok := pipeline.PodOf(&st, at)
		if !ok {
			continue
		}
		kindAt, executor := at+".build", ""
		if st.Build != nil {
			executor = st.Build.Executor
			r.image(kindAt+".image", st.Build.Image, fail) // where its context goes
		} else {
			kindAt, executor = at+".run", st.Run.Executor
			r.image(kindAt+".image", st.Run.Image, fail)
		}
		if executor == "local" && r.Executor() == "kubernetes" {
			fail(kindAt+".executor", "local would run code pushed to repository %s on the engine's own machine; on this engine it runs as a Pod (leave executor out, or write kubernetes; the engine config may give the repository the local sandbox: repositories[].localSandbox)", r.Config.Name)
		}
		if (len(pod.NodeSelector) > 0 || len(pod.Tolerations) > 0) &&
			!slices.ContainsFunc(r.Config.NodePools, func(n engineconfig.NodePool) bool { return holds(n, pod) }) {
			fail(podAt, "its nodeSelector and tolerations are not those of a node pool of repository %s (repositories[].nodePools in the engine config)", r.Config.Name)
		}
		if sa := pod.ServiceAccount; sa != "" && !slices.Contains(r.Config.ServiceAccounts, sa) {
			fail(podAt+".serviceAccount", "%s is not a service account of repository %s: its Pods may run as %s (repositories[].serviceAccounts in the engine config)", sa, r.Config.Name, orNone(strings.Join(r.Config.ServiceAccounts, ", ")))
		}
	}
}

// image checks a run stage's image against the repository's prefixes.
func (r *Repo) image(at, ref string, fail func(path, format string, args ...any)) {
	if strings.Contains(ref, "{{") {
		fail(at, "must be written literally in a pipeline read from a repository, not as a template")
		return
	}
	if !ImageUnder(ref, r.Config.Images) {
		fail(at, "%s is not under an image prefix of repository %s: its stages may run and push images under %s (repositories[].images in the engine config)", ref, r.Config.Name, orNone(strings.Join(r.Config.Images, ", ")))
	}
}

// ImageUnder reports whether image reference ref is in one of the
// repositories prefixes name: a registry (registry.example.com:5000), or
// a registry and a path (registry.example.com/ci), holding the
// repositories below it. Docker Hub's short names count as docker.io's
// (alpine is docker.io/library/alpine).
func ImageUnder(ref string, prefixes []string) bool {
	r, err := name.ParseReference(ref)
	if err != nil {
		return false
	}
	registry, repo := r.Context().RegistryStr(), r.Context().RepositoryStr()
	for _, p := range prefixes {
		host, path, _ := strings.Cut(strings.TrimSuffix(p, "/"), "/")
		reg, err := name.NewRegistry(host)
		if err != nil || reg.RegistryStr() != registry {
			continue
		}
		if path == "" || repo == path || strings.HasPrefix(repo, path+"/") {
			return true
		}
	}
	return false
}
