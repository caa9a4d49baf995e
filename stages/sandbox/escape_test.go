package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The work in a sandbox is root of its own user namespace and may chroot;
// the classic climb out of a chroot (chroot into a directory, "..", chroot
// at the top) must find nothing above the sandbox's root: the machine's
// files — one everybody may read, and another sandbox's, owned by the
// same ID range — are neither read nor written.
func TestTheRootCannotBeClimbedOutOf(t *testing.T) {
	needRoot(t)
	root, _ := newTestRoot(t)
	underTmp(t, root)
	climb := root.Path("climb")
	build := exec.Command("go", "build", "-o", climb, "testdata/climb.go")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the climber: %v\n%s", err, out)
	}
	// A file any user of this machine may read, and one of "another
	// sandbox" (the same mapped owner), in a directory the sandbox's IDs
	// may enter.
	shared := filepath.Join(t.TempDir(), "world-readable")
	must(t, os.WriteFile(shared, []byte("machine secret"), 0o644))
	must(t, os.Chmod(filepath.Dir(shared), 0o755))
	other := filepath.Join(filepath.Dir(root.Dir), "other-sandbox-config.json")
	must(t, os.WriteFile(other, []byte(`{"auths":{"registry":"token"}}`), 0o600))
	must(t, os.Lchown(other, DefaultIDBase, DefaultIDBase))
	must(t, root.HandOver())
	var out strings.Builder
	err := root.Run(context.Background(), Command{Path: "/climb", Args: []string{shared, other, "/etc/hostname"}, Output: &out})
	if err != nil {
		t.Fatalf("running the climber: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "READ") || strings.Contains(out.String(), "WROTE") {
		t.Errorf("the sandbox reached the machine's files:\n%s", out.String())
	}
	for _, p := range []string{shared + ".written", other + ".written"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the sandbox wrote %s", p)
		}
	}
}

// underTmp opens the directories above root's home to everyone, as /tmp
// is: the sandbox's IDs must pass through them to reach their root.
func underTmp(t *testing.T, root *Root) {
	t.Helper()
	for dir := filepath.Dir(filepath.Dir(root.own)); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		must(t, os.Chmod(dir, 0o755))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Concurrent sandboxes hold ID ranges of their own, let go when removed:
// what one sandbox's work owns on this machine (its registry credentials,
// its context) is another owner's to every other sandbox, should one
// reach it.
func TestConcurrentSandboxesHaveTheirOwnIDs(t *testing.T) {
	needRoot(t)
	// Ranges of its own: the test takes all of them, which sandboxes of
	// other tests on this machine must not find taken. (Not parallel: the
	// package's parallel tests start after it ends.)
	machine := rangeLocks
	rangeLocks = t.TempDir()
	t.Cleanup(func() { rangeLocks = machine })
	a, _ := newTestRoot(t)
	b, _ := newTestRoot(t)
	if a.idBase == b.idBase || a.ids == nil || b.ids == nil {
		t.Fatalf("two sandboxes share ID base %d / %d (ranges %v %v)", a.idBase, b.idBase, a.ids, b.ids)
	}
	for _, r := range []*Root{a, b} {
		if r.idBase < DefaultIDBase || (r.idBase-DefaultIDBase)%IDs != 0 || r.idBase >= DefaultIDBase+Ranges*IDs {
			t.Errorf("ID base %d is not one of the %d ranges from %d", r.idBase, Ranges, DefaultIDBase)
		}
	}
	must(t, a.HandOver())
	var st syscall.Stat_t
	must(t, syscall.Lstat(a.Dir, &st))
	if int(st.Uid) != a.idBase || int(st.Uid) == b.idBase {
		t.Errorf("a's root is owned by %d; want a's base %d (b's is %d)", st.Uid, a.idBase, b.idBase)
	}
	// Each tree is entered by its own sandbox's IDs only (and this
	// machine's root): a's cannot reach b's, b's can.
	underTmp(t, b)
	must(t, b.HandOver())
	enter := func(ids int) error {
		cmd := exec.Command("/bin/ls", b.Path("dev"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(ids), Gid: uint32(ids)}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := enter(a.idBase); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("a's IDs listing b's tree: %v, want permission denied", err)
	}
	if err := enter(b.idBase); err != nil {
		t.Errorf("b's IDs cannot reach b's own root: %v", err)
	}
	if info, err := os.Stat(filepath.Dir(b.own)); err != nil || info.Mode().Perm() != 0o711 {
		t.Errorf("the sandboxes' home: %v, %v; want mode 0711", info.Mode(), err)
	}
	held := b.idBase
	b.Remove(io.Discard)
	again := make([]*Root, 0, Ranges-1)
	for range Ranges - 1 { // every range but a's: b's was let go
		r, _ := newTestRoot(t)
		again = append(again, r)
	}
	found := false
	for _, r := range again {
		found = found || r.idBase == held
		if r.idBase == a.idBase {
			t.Fatalf("a range was given twice: %d", a.idBase)
		}
	}
	if !found {
		t.Errorf("b's range %d was not let go when b was removed", held)
	}
	if _, err := NewRoot(t.TempDir(), "root-", 0); err == nil || !strings.Contains(err.Error(), "ID ranges are in use") {
		t.Errorf("a sandbox past %d ranges: %v, want a refusal", Ranges, err)
	}
}
