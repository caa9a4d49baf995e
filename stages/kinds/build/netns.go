package build

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/slipwayci/slipway/stages/sandbox"
)

// loopbackRegistries lists the registries on this machine (127.0.0.1,
// localhost, [::1]) a build names: its destination, its cache and the
// images its Dockerfile starts FROM.
func loopbackRegistries(req Request) []string {
	refs := []string{req.Destination, req.CacheRepo}
	if f, err := os.Open(req.Dockerfile); err == nil {
		sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && strings.EqualFold(fields[0], "FROM") {
				for _, a := range fields[1:] {
					if !strings.HasPrefix(a, "--") {
						refs = append(refs, a)
						break
					}
				}
			}
		}
		f.Close()
	}
	return sandbox.LoopbackRegistries(refs...)
}

// reachable is the registries on this machine req names, each one the
// builder may relay into its sandbox.
func (l *Local) reachable(req Request) ([]string, error) {
	named := loopbackRegistries(req)
	if l.Registries == nil {
		return named, nil
	}
	allowed := sandbox.LoopbackRegistries(l.Registries...)
	for _, r := range named {
		if !slices.Contains(allowed, r) {
			return nil, fmt.Errorf("the build names %s, a port on the engine's machine that is not a registry builds may reach (sandbox.registries in the engine config: %s); nothing was built", r, orNone(strings.Join(allowed, ", ")))
		}
	}
	return named, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
