package sandbox

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// newTestRoot is a sandbox root made under a temporary directory, beside
// a victim directory of "this machine" that nothing may write.
func newTestRoot(t *testing.T) (root *Root, victim string) {
	t.Helper()
	dir := t.TempDir()
	victim = filepath.Join(dir, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := NewRoot(dir, "root-", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Remove(io.Discard) })
	return root, victim
}

// A checkout copied into a sandbox whose image put a link where the
// checkout goes — to a directory of this machine, absolute or by ".." —
// is refused, and nothing is written outside the root.
func TestCopyInStaysInTheRoot(t *testing.T) {
	t.Parallel()
	checkout := t.TempDir()
	if err := os.WriteFile(filepath.Join(checkout, "payload"), []byte("* * * * * root touch /pwned\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		link func(victim string) string
	}{
		{"an absolute link", func(victim string) string { return victim }},
		{"a link up and out", func(victim string) string { return "../../../victim" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, victim := newTestRoot(t)
			if err := os.MkdirAll(root.Path("workspace"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.link(victim), root.Path("workspace/src")); err != nil {
				t.Fatal(err)
			}
			err := root.CopyIn(checkout, "workspace/src")
			if err == nil {
				t.Error("CopyIn through the image's link succeeded")
			}
			if entries, _ := os.ReadDir(victim); len(entries) != 0 {
				t.Errorf("the copy wrote outside the root: %v", entries)
			}
		})
	}
	t.Run("a checkout's own links are copied as links", func(t *testing.T) {
		root, _ := newTestRoot(t)
		src := t.TempDir()
		if err := os.Symlink("/etc/passwd", filepath.Join(src, "passwd")); err != nil {
			t.Fatal(err)
		}
		if err := root.CopyIn(src, "workspace/src"); err != nil {
			t.Fatal(err)
		}
		if link, err := os.Readlink(root.Path("workspace/src/passwd")); err != nil || link != "/etc/passwd" {
			t.Errorf("copied link = %q, %v", link, err)
		}
	})
}

// What the engine reads back from a sandbox after untrusted work ran
// there is a small regular file beneath the root: a link to a file of this
// machine, a FIFO or a large file is refused, and no error holds the
// content.
func TestReadSmallReadsOnlyASmallFileOfTheRoot(t *testing.T) {
	t.Parallel()
	const secret = "ADMIN_TOKEN=s3cr3t-engine-token"
	outside := filepath.Join(t.TempDir(), "digest") // of this machine, named as the file read
	if err := os.WriteFile(outside, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, want string
		make       func(root *Root, name string) error
	}{
		{"a digest", "", func(_ *Root, name string) error { return os.WriteFile(name, []byte("sha256:abc\n"), 0o644) }},
		{"an absolute link", "not a regular file", func(_ *Root, name string) error { return os.Symlink(outside, name) }},
		{"a link up and out", "not a regular file", func(_ *Root, name string) error { return os.Symlink("../../../../../../../.."+outside, name) }},
		{"a link to /proc/self/environ", "not a regular file", func(_ *Root, name string) error { return os.Symlink("/proc/self/environ", name) }},
		{"a FIFO", "not a regular file", func(_ *Root, name string) error { return syscall.Mkfifo(name, 0o644) }},
		{"a large file", "more than 128", func(_ *Root, name string) error { return os.WriteFile(name, make([]byte, 1<<20), 0o644) }},
		{"a directory of links", "escapes", func(root *Root, _ string) error {
			if err := os.RemoveAll(root.Path("kaniko")); err != nil {
				return err
			}
			return os.Symlink(filepath.Dir(outside), root.Path("kaniko"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := newTestRoot(t)
			if err := os.MkdirAll(root.Path("kaniko"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tt.make(root, root.Path("kaniko/digest")); err != nil {
				t.Fatal(err)
			}
			got, err := root.ReadSmall("kaniko/digest", 128)
			switch {
			case tt.want == "" && (err != nil || string(got) != "sha256:abc\n"):
				t.Errorf("ReadSmall = %q, %v", got, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ReadSmall = %q, %v; want an error saying %q", got, err, tt.want)
			}
			if strings.Contains(string(got), "s3cr3t") || (err != nil && strings.Contains(err.Error(), "s3cr3t")) {
				t.Errorf("the file of this machine was read: %q, %v", got, err)
			}
		})
	}
}
