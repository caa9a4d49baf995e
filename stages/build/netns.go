package build

import (
	"bufio"
	"io"
	"os"
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
