// Command slipway-image is `make image`: it builds Slipway's image from
// the repository's Dockerfile with the pinned Kaniko executor (package
// slipwayimage; no Docker engine) and pushes it to --registry, or, without
// one, to a registry of its own and writes it to --tar (docker load or
// crane push can take it from there).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/slipwayci/slipway/integration/registry"
	"github.com/slipwayci/slipway/integration/slipwayimage"
	"github.com/slipwayci/slipway/stages/tools"
)

func main() {
	slipway := flag.String("slipway", "bin/slipway", "the static slipway binary (make build)")
	dockerfile := flag.String("dockerfile", "Dockerfile", "the image's Dockerfile")
	reg := flag.String("registry", "", "host:port of a plain-HTTP registry to push to; empty: write --tar")
	tar := flag.String("tar", "bin/slipway-image.tar", "where the image goes without --registry")
	version := flag.String("version", "dev", "the image's tag")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *slipway, *dockerfile, *reg, *tar, *version); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, slipway, dockerfile, reg, tar, version string) error {
	for _, tool := range []string{tools.Kaniko(), tools.Trivy()} {
		if err := tools.Check(tool); err != nil {
			return err
		}
	}
	own := reg == "" // a registry of its own, for the tarball
	if own {
		dir, err := os.MkdirTemp("", "slipway-image-registry-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		r, err := registry.Start(ctx, dir)
		if err != nil {
			return err
		}
		defer r.Stop()
		reg = r.Addr
	}
	ref, err := slipwayimage.Build(ctx, slipwayimage.Options{Dockerfile: dockerfile, Slipway: slipway, Trivy: tools.Trivy(), Kaniko: tools.Kaniko(),
		Registry: reg, Ref: "slipway/slipway:" + version, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Println("pushed", ref)
	if !own {
		return nil
	}
	digest, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(digest, remote.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("reading %s back: %w", ref, err)
	}
	tag, err := name.NewTag("ghcr.io/slipwayci/slipway:" + version)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(tar, tag, img); err != nil {
		return fmt.Errorf("writing %s: %w", tar, err)
	}
	fmt.Println("wrote", tar, "as", tag.String())
	return nil
}
