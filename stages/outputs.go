package stages

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// BuiltImage is the image an earlier stage pushed: its "ref" output,
// repository@sha256:… (the build kind sets it; deploy repeats it). Several different candidates are an
// error that names them.
func BuiltImage(outputs map[string]map[string]string) (string, error) {
	var refs []string
	for _, out := range outputs {
		if ref := out["ref"]; strings.Contains(ref, "@sha256:") && !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	sort.Strings(refs)
	switch len(refs) {
	case 0:
		return "", errors.New("no earlier stage pushed an image: run a build stage first, or name the image")
	case 1:
		return refs[0], nil
	}
	return "", fmt.Errorf("several earlier stages pushed images (%s): name the image", strings.Join(refs, ", "))
}
