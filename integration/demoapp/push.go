package demoapp

import (
	"context"
	"os"
	"strings"

	"github.com/slipwayci/slipway/integration/registry"
)

// Push builds the service and pushes it to the registry at addr as ref
// (repository:tag), with busybox for a shell and behaviour as its
// behaviour file; it returns addr/repository@digest.
func Push(ctx context.Context, addr, ref, behaviour string) (string, error) {
	app, err := Build(ctx, false)
	if err != nil {
		return "", err
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return "", err
	}
	files := []registry.File{{Path: "bin/", Mode: 0o40755}, {Path: "bin/busybox", Mode: 0o755, Data: bb}, {Path: "bin/sh", Link: "busybox"},
		{Path: "etc/", Mode: 0o40755}, {Path: "etc/order-service/", Mode: 0o40755},
		{Path: "etc/order-service/behaviour.json", Mode: 0o644, Data: []byte(behaviour)},
		{Path: "app", Mode: 0o755, Data: app}}
	digest, err := registry.PushImage(addr+"/"+ref, files, []string{"/app"})
	if err != nil {
		return "", err
	}
	return addr + "/" + strings.Split(ref, ":")[0] + "@" + digest.String(), nil
}
