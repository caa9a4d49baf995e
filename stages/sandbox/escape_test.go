package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	for dir := filepath.Dir(root.Dir); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		must(t, os.Chmod(dir, 0o755)) // as under /tmp: the sandbox's IDs must reach their root
	}
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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
