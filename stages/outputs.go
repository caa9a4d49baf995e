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

// Source is the commit a clone stage checked out, as its outputs say:
// where from (a URL without credentials), which ref and commit, and the
// names of the secrets that reach it. Stages that fetch the same commit
// elsewhere (a Pod's checkout) read it with CheckedOut.
type Source struct {
	Repo, Ref, SHA string
	// Secret names (declared under secrets:), "" for none.
	Username, TokenSecret, SSHKeySecret string
}

// Outputs are the keys a clone stage writes for s (beside its own).
func (s Source) Outputs() map[string]string {
	return map[string]string{"repo": s.Repo, "ref": s.Ref, "sha": s.SHA,
		"authUsername": s.Username, "authToken": s.TokenSecret, "authSSHKey": s.SSHKeySecret}
}

// CheckedOut is the Source of the run's clone stage.
func CheckedOut(outputs map[string]map[string]string) (Source, error) {
	var found []Source
	for _, out := range outputs {
		if out["repo"] != "" && out["sha"] != "" && out["ref"] != "" {
			found = append(found, Source{Repo: out["repo"], Ref: out["ref"], SHA: out["sha"],
				Username: out["authUsername"], TokenSecret: out["authToken"], SSHKeySecret: out["authSSHKey"]})
		}
	}
	switch len(found) {
	case 0:
		return Source{}, errors.New("no earlier stage checked the commit out: run a clone stage first")
	case 1:
		return found[0], nil
	}
	return Source{}, errors.New("several earlier stages checked commits out: a Pod's checkout must be unambiguous")
}
