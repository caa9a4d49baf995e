package sandbox

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// needRoot: Unpack hands files to the sandbox's IDs, which takes root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and not root: unpacking an image chowns its files")
		}
		t.Skip("unpacking an image chowns its files: run as root")
	}
}

// stream is a tar stream of headers (with content for regular files).
func stream(t *testing.T, entries []tar.Header) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Size, h.Linkname = int64(len(body)), ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	return &buf
}

// image is an image of one layer per argument.
func image(t *testing.T, layers ...[]tar.Header) v1.Image {
	t.Helper()
	img := empty.Image
	for _, entries := range layers {
		data, _ := io.ReadAll(stream(t, entries))
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// file is a regular file entry whose content is body (carried in
// Linkname until image writes it).
func file(name, body string, mode int64, uid int) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: body, Mode: mode, Uid: uid, Gid: uid}
}

// An image unpacks into the root as inside: files, modes, symlinks, hard
// links, a later layer's whiteout applied, owners mapped to the
// sandbox's IDs, setuid dropped, devices skipped.
func TestUnpackWritesTheImageFilesystem(t *testing.T) {
	needRoot(t)
	r := &Root{Dir: t.TempDir(), idBase: DefaultIDBase}
	img := image(t, []tar.Header{
		{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755},
		file("bin/busybox", "#!busybox", 0o4755, 0),
		{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "/bin/busybox"},
		{Typeflag: tar.TypeLink, Name: "bin/ash", Linkname: "bin/busybox"},
		file("home/app/notes", "mine", 0o600, 1000),
		file("etc/gone", "old", 0o644, 0),
		{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3},
	}, []tar.Header{
		file("etc/.wh.gone", "", 0o644, 0),
		{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777},
	})
	if err := r.Unpack(img, 0); err != nil {
		t.Fatal(err)
	}
	check := func(name string, mode os.FileMode, uid int) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(r.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || int(st.Uid) != uid {
			t.Errorf("%s: mode %v uid %d, want %v %d", name, fi.Mode(), st.Uid, mode, uid)
		}
	}
	check("bin/busybox", 0o755, DefaultIDBase)
	check("home/app/notes", 0o600, DefaultIDBase+1000)
	check("tmp", os.ModeDir|os.ModeSticky|0o777, DefaultIDBase)
	if link, _ := os.Readlink(filepath.Join(r.Dir, "bin/sh")); link != "/bin/busybox" {
		t.Errorf("bin/sh -> %q", link)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Dir, "bin/ash")); string(b) != "#!busybox" {
		t.Errorf("bin/ash holds %q", b)
	}
	for _, gone := range []string{"etc/gone", "dev/null"} {
		if _, err := os.Lstat(filepath.Join(r.Dir, gone)); err == nil {
			t.Errorf("%s was unpacked", gone)
		}
	}
}

// A hostile image cannot write outside the root: not by a path with
// "..", not through a symlink to a directory outside, not by a hard link
// to a file outside; and it cannot fill the disk past the limit. The
// flattening (mutate.Extract) drops some of these; the unpacking refuses
// every one of them on its own, which is what is tested here.
func TestUnpackKeepsHostileImagesInTheRoot(t *testing.T) {
	needRoot(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, entries := range map[string][]tar.Header{
		"dot-dot":          {file("../../../.."+victim, "owned", 0o644, 0)},
		"symlinked parent": {{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: outside}, file("evil/victim", "owned", 0o644, 0)},
		"relative link":    {{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../../../../../../../" + outside}, file("up/victim", "owned", 0o644, 0)},
		"hard link":        {{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../../../../../../" + victim}},
		"symlink to file":  {{Typeflag: tar.TypeSymlink, Name: "v", Linkname: victim}, file("v", "owned", 0o644, 0)},
		"dir over link":    {{Typeflag: tar.TypeSymlink, Name: "d", Linkname: outside}, {Typeflag: tar.TypeDir, Name: "d/sub", Mode: 0o777}},
	} {
		r := &Root{Dir: t.TempDir(), idBase: DefaultIDBase}
		err := r.unpackTar(stream(t, entries), 0)
		if b, _ := os.ReadFile(victim); string(b) != "untouched" {
			t.Fatalf("%s: the file outside the root now holds %q (err %v)", name, b, err)
		}
		if fi, _ := os.Stat(victim); fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode() != 0o644 {
			t.Fatalf("%s: the file outside the root changed owner or mode", name)
		}
		if _, serr := os.Stat(filepath.Join(outside, "sub")); err == nil || serr == nil {
			t.Errorf("%s: unpacked without an error (%v), or made a directory outside", name, err)
		}
	}
	r := &Root{Dir: t.TempDir(), idBase: DefaultIDBase}
	err := r.Unpack(image(t, []tar.Header{file("big", strings.Repeat("x", 2048), 0o644, 0)}), 1024)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("an image past the limit: %v", err)
	}
}
