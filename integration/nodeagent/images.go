package nodeagent

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// images pulls images and unpacks each digest's filesystem once.
type images struct {
	dir string
	mu  sync.Mutex // one unpack at a time; unpacked digests are reused
}

// image is an unpacked image: its root filesystem and its config.
type image struct {
	Digest string
	Root   string
	Config v1.Config
}

// pull resolves ref (plain HTTP for loopback registries) and unpacks it.
func (s *images) pull(ctx context.Context, ref string) (*image, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(s.dir, strings.ReplaceAll(digest.String(), ":", "-"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(root); err != nil {
		tmp := root + ".partial"
		os.RemoveAll(tmp)
		if err := unpack(mutate.Extract(img), tmp); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("unpacking %s: %w", ref, err)
		}
		if err := os.Rename(tmp, root); err != nil {
			return nil, err
		}
	}
	return &image{Digest: digest.String(), Root: root, Config: cfg.Config}, nil
}

// unpack writes a flattened image filesystem under root, refusing entries
// that would land outside it.
func unpack(rc io.ReadCloser, root string) error {
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target := filepath.Join(root, filepath.Clean("/"+h.Name))
		if !strings.HasPrefix(target, root+string(filepath.Separator)) && target != root {
			return fmt.Errorf("entry %q leaves the image root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode)|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o7777)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(target), 0o755)
			os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src := filepath.Join(root, filepath.Clean("/"+h.Linkname))
			os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
		}
	}
}
