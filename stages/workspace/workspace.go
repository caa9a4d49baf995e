// Package workspace resolves paths a pipeline names inside the run's
// checkout, refusing those that leave it — by "..", by an absolute path, or
// through a symlink. Stage kinds that read the repository share it.
package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Kind says what a resolved path must be.
type Kind int

const (
	File Kind = iota
	Dir
)

// Resolve returns the real path of rel inside repo (itself resolved), or
// an error saying why rel cannot be used: it does not exist, it is not of
// the wanted kind, or it resolves outside the repository.
func Resolve(repo, rel string, want Kind) (string, error) {
	root, err := filepath.EvalSymlinks(repo)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("the run has no checkout for %s: no stage before this one checked the repository out (a clone stage)", rel)
	}
	if err != nil {
		return "", fmt.Errorf("reading the checkout: %w", err)
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s must be relative to the repository", rel)
	}
	full, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist in the repository", rel)
	}
	if err != nil {
		return "", err
	}
	if full != root && !strings.HasPrefix(full, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%s leaves the repository (it resolves to %s)", rel, full)
	}
	fi, err := os.Stat(full)
	if err != nil {
		return "", err
	}
	switch {
	case want == Dir && !fi.IsDir():
		return "", fmt.Errorf("%s is not a directory", rel)
	case want == File && !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file", rel)
	}
	return full, nil
}
