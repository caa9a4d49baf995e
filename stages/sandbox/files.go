package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// LinkOrCopy hard-links src to dst when they share a filesystem, and
// copies it otherwise.
func LinkOrCopy(src, dst string, mode fs.FileMode) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return CopyFile(src, dst, mode)
}

// CopyFile copies src to dst, made with mode.
func CopyFile(src, dst string, mode fs.FileMode) error {
	return copyFile(
		func() (*os.File, error) { return os.Open(src) },
		func() (*os.File, error) { return os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode) })
}

// copyFile copies what open gives to what create gives.
func copyFile(open, create func() (*os.File, error)) error {
	in, err := open()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := create()
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CopyIn copies a tree of this machine (a checkout or a build context)
// to dst inside the root: files, directories and symlinks (as links;
// inside the sandbox they resolve inside it). The .git directory at the
// top is left out. Every write goes through the root (os.Root), so a path
// the sandbox's tree already holds — a symlink an image put at dst, say —
// can lead nowhere outside it: such a write fails.
func (r *Root) CopyIn(src, dst string) error {
	from, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := os.OpenRoot(r.Dir)
	if err != nil {
		return err
	}
	defer to.Close()
	if err := to.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("making %s in the sandbox: %w", dst, err)
	}
	return fs.WalkDir(from.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if rel == ".git" && d.IsDir() {
			return fs.SkipDir
		}
		target := path.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return to.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := from.Readlink(rel)
			if err != nil {
				return err
			}
			return to.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyWithin(from, rel, to, target, info.Mode().Perm())
		}
		return errors.New(rel + " is neither a file, a directory nor a symlink")
	})
}

// copyWithin copies file name of from to target of to, made with mode.
func copyWithin(from *os.Root, name string, to *os.Root, target string, mode fs.FileMode) error {
	return copyFile(
		func() (*os.File, error) { return from.Open(name) },
		func() (*os.File, error) { return to.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode) })
}

// ReadSmall reads file name of the root after untrusted work ran in it
// (a digest Kaniko wrote): opened beneath the root without following a
// link at its end, it must be a regular file of at most max bytes. Errors
// say what the file is, never what it holds.
func (r *Root) ReadSmall(name string, max int64) ([]byte, error) {
	fsys, err := os.OpenRoot(r.Dir)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	before, err := fsys.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", name, describe(before.Mode()))
	}
	if before.Size() > max {
		return nil, fmt.Errorf("%s holds %d bytes, more than %d", name, before.Size(), max)
	}
	f, err := fsys.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if after, err := f.Stat(); err != nil || !os.SameFile(before, after) {
		return nil, fmt.Errorf("%s changed while it was opened", name)
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// describe names the type of a file that is not a regular file.
func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a plain file: " + m.Type().String()
}
