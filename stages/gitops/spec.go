package gitops

import (
	"os"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/slipwayci/slipway/pipeline"
)

// WriterFor returns the Writer of a pipeline's gitops settings, with the
// token secret (by name, from secrets) as HTTPS credentials.
func WriterFor(g pipeline.GitOpsSpec, secrets map[string]string) *Writer {
	branch := g.Branch
	if branch == "" {
		branch = "main"
	}
	w := &Writer{URL: g.Repo, Branch: branch, WorkRoot: os.TempDir()}
	if g.Auth.Token != "" {
		user := g.Auth.Username
		if user == "" {
			user = "x-access-token"
		}
		w.Auth = &githttp.BasicAuth{Username: user, Password: secrets[g.Auth.Token]}
	}
	return w
}

// LocatorOf converts a pipeline's image locator.
func LocatorOf(l pipeline.ImageLocator) Locator {
	return Locator{Kustomize: l.Kustomize, HelmFile: l.Helm, HelmKey: l.Key, ManifestFile: l.Manifest, Container: l.Container}
}
