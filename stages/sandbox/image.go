package sandbox

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// MaxImageBytes is how much file content Unpack writes at most.
const MaxImageBytes = 4 << 30

// Unpack writes the image's filesystem — its layers flattened, whiteouts
// applied — into the root, each file owned as inside (uid u is IDBase+u
// here). Every write is confined to the root (os.Root): an entry that
// names a path outside it, or reaches outside through a symlink, fails
// the unpacking, so a hostile image cannot write anywhere else on the
// machine. Devices and FIFOs are skipped (the sandbox has its own /dev),
// and setuid and setgid bits dropped. At most limit bytes of content
// (0: MaxImageBytes).
func (r *Root) Unpack(img v1.Image, limit int64) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	return r.unpackTar(rc, limit)
}

// unpackTar writes a flattened filesystem (a tar stream) into the root.
func (r *Root) unpackTar(stream io.Reader, limit int64) error {
	if limit <= 0 {
		limit = MaxImageBytes
	}
	fsys, err := os.OpenRoot(r.Dir)
	if err != nil {
		return err
	}
	defer fsys.Close()
	tr := tar.NewReader(stream)
	var written int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the image's layers: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if name == "." {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("the image holds %q, a path outside its root", h.Name)
		}
		n, err := r.unpackOne(fsys, tr, h, name, limit-written)
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", name, err)
		}
		written += n
	}
}

// unpackOne writes one entry and returns how many bytes of content.
func (r *Root) unpackOne(fsys *os.Root, tr io.Reader, h *tar.Header, name string, room int64) (int64, error) {
	mode := fs.FileMode(h.Mode) & (fs.ModePerm | fs.ModeSticky)
	if h.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	if dir := path.Dir(name); dir != "." {
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	var n int64
	switch h.Typeflag {
	case tar.TypeDir:
		if err := fsys.MkdirAll(name, 0o755); err != nil {
			return 0, err
		}
		if err := fsys.Chmod(name, mode); err != nil {
			return 0, err
		}
	case tar.TypeReg:
		if h.Size > room {
			return 0, fmt.Errorf("the image's files are larger than %d bytes in all", MaxImageBytes)
		}
		f, err := fsys.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return 0, err
		}
		n, err = io.Copy(f, io.LimitReader(tr, room))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return n, err
		}
		if err := fsys.Chmod(name, mode); err != nil { // the umask narrowed it
			return n, err
		}
	case tar.TypeSymlink:
		if err := fsys.Symlink(h.Linkname, name); err != nil {
			return 0, err
		}
	case tar.TypeLink:
		target := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
		if !filepath.IsLocal(target) {
			return 0, fmt.Errorf("a hard link to %q, outside the root", h.Linkname)
		}
		if err := fsys.Link(target, name); err != nil {
			return 0, err
		}
		return 0, nil // the target's owner stands
	default: // devices, FIFOs: the sandbox makes its own /dev
		return 0, nil
	}
	uid, gid := h.Uid, h.Gid
	if uid < 0 || uid >= IDs || gid < 0 || gid >= IDs {
		uid, gid = 0, 0
	}
	return n, fsys.Lchown(name, r.idBase+uid, r.idBase+gid)
}
