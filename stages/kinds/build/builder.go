package build

import (
	"context"
	"io"
	"sort"
	"strings"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

// Builder builds an image from a prepared context and pushes it.
//
// Build is called once per attempt, may run for minutes, writes the
// builder's own output to log, and returns when the image is pushed (with
// its digest) or the build failed. It must stop promptly when ctx is done
// and leave nothing behind on the machine either way. Implementations are
// safe for concurrent use by different builds.
type Builder interface {
	Build(ctx context.Context, req Request, log io.Writer) (Result, error)
}

// Request is one image build.
type Request struct {
	ContextDir  string // absolute, on the machine running slipway
	Dockerfile  string // absolute path of the Dockerfile (inside the repository)
	Destination string // repository:tag to push
	BuildArgs   map[string]string
	Target      string
	Cache       bool
	CacheRepo   string
	Insecure    []string // registries (host:port) spoken to over plain HTTP
	// DockerConfig is a config.json with registry credentials, or nil.
	DockerConfig []byte
	// Run is the build's run: its checkout (ContextDir is inside its
	// Workdir), and what names a build Pod.
	Run *stages.Run
	Pod pipeline.PodSettings // where and how big a build Pod is
}

// Result is what a build pushed.
type Result struct {
	Digest string // sha256:…
}

// executorArgs are the Kaniko executor's arguments for req, given where
// the context, the Dockerfile and the digest file are from the executor's
// point of view. Both executors (local and kubernetes) use them.
func executorArgs(req Request, contextPath, dockerfilePath, digestFile string) []string {
	args := []string{
		"--context=dir://" + contextPath,
		"--dockerfile=" + dockerfilePath,
		"--destination=" + req.Destination,
		"--digest-file=" + digestFile,
		"--log-format=text",
		"--log-timestamp=false",
		"--push-retry=2",
		// No timestamps: the same commit builds the same image (the same
		// digest) wherever it is built, on this machine or in a Pod.
		"--reproducible",
	}
	keys := make([]string, 0, len(req.BuildArgs))
	for k := range req.BuildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--build-arg="+k+"="+req.BuildArgs[k])
	}
	if req.Target != "" {
		args = append(args, "--target="+req.Target)
	}
	if req.Cache {
		args = append(args, "--cache=true")
		if req.CacheRepo != "" {
			args = append(args, "--cache-repo="+req.CacheRepo)
		}
	}
	if len(req.Insecure) > 0 {
		args = append(args, "--insecure", "--insecure-pull")
		for _, r := range req.Insecure {
			args = append(args, "--insecure-registry="+r)
		}
	}
	return args
}

// registryHost is the registry part of an image reference.
func registryHost(image string) string {
	host, _, ok := strings.Cut(image, "/")
	if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "index.docker.io"
	}
	return host
}
