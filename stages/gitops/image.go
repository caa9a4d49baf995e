package gitops

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/slipwayci/slipway/stages/workspace"
)

// Locator says where an app's directory keeps the image to deploy.
// Exactly one field is set.
type Locator struct {
	// Kustomize: the `images:` entry of kustomization.yaml with this name
	// gets newName and digest (and loses newTag).
	Kustomize string
	// Helm: a values file and the dotted key path of a value that holds
	// the whole reference (repository@digest), e.g. canary.image.
	HelmFile, HelmKey string
	// Manifest: a manifest file and the container whose image is set.
	ManifestFile, Container string
}

// SetImage writes image@digest where loc says, under appDir of the
// checkout root, keeping comments and formatting. It reports whether the
// file changed. Paths that leave the repository are refused.
//
// An empty digest writes image as it is (repository:tag): the stable image
// a rollback restores may have been pinned by tag.
func SetImage(root, appDir string, loc Locator, image, digest string) (bool, error) {
	ref := image + "@" + digest
	if digest == "" {
		ref = image
	}
	switch {
	case loc.Kustomize != "":
		return editYAML(root, filepath.Join(appDir, "kustomization.yaml"), func(rn *yaml.RNode) error {
			entry, err := rn.Pipe(yaml.LookupCreate(yaml.SequenceNode, "images"), yaml.ElementMatcher{Keys: []string{"name"}, Values: []string{loc.Kustomize}, Create: yaml.NewMapRNode(&map[string]string{"name": loc.Kustomize})})
			if err != nil {
				return fmt.Errorf("finding images entry %q: %w", loc.Kustomize, err)
			}
			fields := map[string]string{"newName": image, "digest": digest}
			clear := "newTag"
			if digest == "" {
				name, tag := splitTag(image)
				fields, clear = map[string]string{"newName": name, "newTag": tag}, "digest"
			}
			for field, value := range fields {
				if err := setScalar(entry, field, value, yaml.NewStringRNode); err != nil {
					return err
				}
			}
			_, err = entry.Pipe(yaml.Clear(clear))
			return err
		})
	case loc.HelmFile != "":
		keys := strings.Split(loc.HelmKey, ".")
		if loc.HelmKey == "" || len(keys) == 0 {
			return false, fmt.Errorf("a Helm values locator needs a key path")
		}
		return editYAML(root, filepath.Join(appDir, loc.HelmFile), func(rn *yaml.RNode) error {
			parent, err := rn.Pipe(yaml.LookupCreate(yaml.MappingNode, keys[:len(keys)-1]...))
			if err != nil {
				return err
			}
			return setScalar(parent, keys[len(keys)-1], ref, yaml.NewStringRNode)
		})
	case loc.ManifestFile != "":
		return editYAML(root, filepath.Join(appDir, loc.ManifestFile), func(rn *yaml.RNode) error {
			c, err := rn.Pipe(yaml.Lookup("spec", "template", "spec", "containers", "[name="+loc.Container+"]"))
			if err != nil {
				return err
			}
			if c == nil {
				return fmt.Errorf("no container %q in spec.template.spec.containers", loc.Container)
			}
			return setScalar(c, "image", ref, yaml.NewStringRNode)
		})
	}
	return false, fmt.Errorf("no image locator: set kustomize, helm or manifest")
}

// setScalar sets field of the mapping m to value: in place when the field
// holds a scalar (so a comment on its line stays), else as a new node.
func setScalar(m *yaml.RNode, field, value string, node func(string) *yaml.RNode) error {
	if f := m.Field(field); f != nil && f.Value != nil && f.Value.YNode().Kind == yaml.ScalarNode {
		f.Value.YNode().Value = value
		f.Value.YNode().Tag = node(value).YNode().Tag
		f.Value.YNode().Style = 0
		return nil
	}
	return m.PipeE(yaml.SetField(field, node(value)))
}

// splitTag splits repository:tag (a port in the host is not a tag).
func splitTag(image string) (name, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, "latest"
	}
	return image[:i], image[i+1:]
}

// GetImage reads the image reference (repository@digest, or
// repository:tag) that loc points at under appDir.
func GetImage(root, appDir string, loc Locator) (string, error) {
	var ref string
	read := func(rn *yaml.RNode, path ...string) string {
		n, _ := rn.Pipe(yaml.Lookup(path...))
		if n == nil {
			return ""
		}
		return yaml.GetValue(n)
	}
	var file string
	var f func(*yaml.RNode) error
	switch {
	case loc.Kustomize != "":
		file = filepath.Join(appDir, "kustomization.yaml")
		f = func(rn *yaml.RNode) error {
			entry, _ := rn.Pipe(yaml.Lookup("images", "[name="+loc.Kustomize+"]"))
			if entry == nil {
				return fmt.Errorf("no images entry %q", loc.Kustomize)
			}
			ref = read(entry, "newName")
			if d := read(entry, "digest"); d != "" {
				ref += "@" + d
			} else if t := read(entry, "newTag"); t != "" {
				ref += ":" + t
			}
			return nil
		}
	case loc.HelmFile != "":
		file = filepath.Join(appDir, loc.HelmFile)
		f = func(rn *yaml.RNode) error { ref = read(rn, strings.Split(loc.HelmKey, ".")...); return nil }
	case loc.ManifestFile != "":
		file = filepath.Join(appDir, loc.ManifestFile)
		f = func(rn *yaml.RNode) error {
			ref = read(rn, "spec", "template", "spec", "containers", "[name="+loc.Container+"]", "image")
			return nil
		}
	default:
		return "", fmt.Errorf("no image locator: set kustomize, helm or manifest")
	}
	if _, err := editYAML(root, file, f); err != nil {
		return "", err
	}
	if ref == "" {
		return "", fmt.Errorf("%s holds no image where the locator points", file)
	}
	return ref, nil
}

// editYAML applies f to a single-document YAML file inside root and writes
// it back if it changed.
func editYAML(root, rel string, f func(*yaml.RNode) error) (bool, error) {
	path, err := workspace.Resolve(root, rel, workspace.File)
	if err != nil {
		return false, err
	}
	before, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if bytes.Contains(before, []byte("\n---")) {
		return false, fmt.Errorf("%s holds several YAML documents; point the locator at a file with one", rel)
	}
	rn, err := yaml.Parse(string(before))
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", rel, err)
	}
	if err := f(rn); err != nil {
		return false, fmt.Errorf("editing %s: %w", rel, err)
	}
	after, err := rn.String()
	if err != nil {
		return false, err
	}
	if after == string(before) {
		return false, nil
	}
	return true, os.WriteFile(path, []byte(after), 0o644)
}
