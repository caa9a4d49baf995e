package slipway_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/pipeline"
)

const module = "github.com/slipwayci/slipway/"

// layers is the module layout: which of the module's packages each part may
// import. A package matches the longest prefix listed; "kind" is any
// stages/kinds/<kind> package of a stage kind the pipeline file names.
var layers = map[string][]string{
	"pipeline": {"pipeline"},
	"stages":   {"pipeline", "release", "stages", "excerpt"}, // the contract (package stages), the kinds (stages/kinds/…) and the machinery they share (stages/…)
	"runner":   {"pipeline", "release", "stages", "runner"},
	"triggers": {"pipeline", "release", "runner", "engineconfig", "triggers"}, // engineconfig: the repository model
	"server":   {"pipeline", "release", "runner", "triggers", "server"},
	"configs":  {},
	// commit statuses on the forges: reads runs (runner/store), quotes forges' answers (excerpt)
	"forgestatus": {"release", "runner", "forgestatus", "forgeapi", "excerpt"},
	// where a forge's API is for a repository: imports nothing of ours
	"forgeapi": {},
	// the engine config file, read and checked; cmd/slipway maps it onto the server
	"engineconfig": {"pipeline", "forgeapi", "engineconfig"},
	// helpers for tests only (internal/eventually); see TestShippedBinaryLeavesOutTestKinds
	"internal": {},
	"release":  {}, // the release's domain: states, events, transitions; imports nothing of Slipway
	// what an error may quote of a remote answer: imports nothing of ours
	"excerpt": {},
}

// free may import anything in the module.
var free = []string{"cmd", "integration", "bench"}

// stageKinds are the packages under stages/kinds/ (one per
// pipeline.Kinds): they never import one another, and only cmd and
// integration import them.
var stageKinds = pipeline.Kinds

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages reads the import lines of every non-test Go file in the
// module. It parses the files itself (rather than asking go list) so that
// go test's cache sees the files it read and reruns when they change.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	byDir := map[string]*pkg{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() && path != "." {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a module of its own (tools/kaniko), not part of slipway
			}
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		p := byDir[dir]
		if p == nil {
			p = &pkg{ImportPath: module + dir}
			byDir[dir] = p
		}
		for _, imp := range f.Imports {
			p.Imports = append(p.Imports, strings.Trim(imp.Path.Value, `"`))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	for _, p := range byDir {
		pkgs = append(pkgs, *p)
	}
	return pkgs
}

// area is the first path element of a package of the module: runner for
// runner/store/sqlstore. kind is set for stages/kinds/<kind>[/…].
func area(path string) (top, kind string) {
	rel := strings.TrimPrefix(path, module)
	parts := strings.Split(rel, "/")
	if len(parts) > 2 && parts[0] == "stages" && parts[1] == "kinds" {
		kind = parts[2]
	}
	return parts[0], kind
}

func TestImportDirectionFollowsTheDesign(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		if p.ImportPath+"/" == module {
			continue // this test
		}
		top, kind := area(p.ImportPath)
		if kind != "" && !slices.Contains(stageKinds, kind) {
			t.Errorf("%s: stages/kinds/ holds the stage kinds a pipeline file names (%v), not %s", p.ImportPath, stageKinds, kind)
		}
		if slices.Contains(free, top) {
			for _, imp := range p.Imports {
				if strings.HasPrefix(imp, module+"internal/") {
					t.Errorf("%s imports %s: internal/ holds test helpers, for _test.go files only", p.ImportPath, imp)
				}
			}
			continue
		}
		allowed, known := layers[top]
		if !known {
			t.Errorf("%s: top-level directory %q is not in the module layout; add it to this test", p.ImportPath, top)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			itop, ikind := area(imp)
			switch {
			case itop == "internal":
				t.Errorf("%s imports %s: internal/ holds test helpers, for _test.go files only", p.ImportPath, imp)
			case !slices.Contains(allowed, itop):
				t.Errorf("%s imports %s: %s/ may import only %v", p.ImportPath, imp, top, allowed)
			case ikind != "" && ikind != kind:
				t.Errorf("%s imports stage kind %s: kinds are wired in cmd/slipway and never import each other", p.ImportPath, imp)
			case (top == "runner" || top == "server") && itop == "stages" && imp != module+"stages":
				t.Errorf("%s imports %s: %s/ knows only the stage contract (package stages)", p.ImportPath, imp, top)
			case top == "pipeline" && !strings.HasPrefix(strings.TrimPrefix(imp, module), "pipeline"):
				t.Errorf("%s imports %s: pipeline/ depends on nothing else in the module", p.ImportPath, imp)
			}
		}
	}
}

// serverParts is how the server's parts may import one another: the
// JSON API, the UI and the hooks share the auth Guard and the views, the
// UI's forms go through the API's handlers, and only package server
// (which routes them) knows them all.
var serverParts = map[string][]string{
	"server/auth":  {},
	"server/view":  {},
	"server/web":   {},
	"server/hooks": {"server/view"},
	"server/api":   {"server/auth", "server/view"},
	"server/ui":    {"server/auth", "server/view", "server/api", "server/web"},
}

func TestServerPartsImportOnlyWhatTheyShare(t *testing.T) {
	seen := 0
	for _, p := range listPackages(t) {
		part := strings.TrimPrefix(p.ImportPath, module)
		if !strings.HasPrefix(part, "server/") {
			continue
		}
		allowed, known := serverParts[part]
		if !known {
			t.Errorf("%s: a part of the server not in serverParts; add it to this test", p.ImportPath)
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if i := strings.TrimPrefix(imp, module); strings.HasPrefix(i, "server") && !slices.Contains(allowed, i) {
				t.Errorf("%s imports %s: %s may import only %v of the server", p.ImportPath, imp, part, allowed)
			}
		}
	}
	if seen != len(serverParts) {
		t.Errorf("found %d of the server's %d parts", seen, len(serverParts))
	}
}

// Each stage kind a pipeline file names is a package of stages/kinds/.
func TestEveryKindHasItsPackage(t *testing.T) {
	for _, k := range stageKinds {
		if files, _ := filepath.Glob(filepath.Join("stages", "kinds", k, "*.go")); len(files) == 0 {
			t.Errorf("stage kind %s has no package stages/kinds/%s", k, k)
		}
	}
}

// testOnly are packages the shipped binary must not contain: only files
// built with the slipway_fake tag (test and benchmark builds) import them.
var testOnly = []string{module + "stages/kinds/fake"}

func TestShippedBinaryLeavesOutTestKinds(t *testing.T) {
	files, err := filepath.Glob("cmd/slipway/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/slipway files: %v", err)
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		tagged := false
		for _, c := range f.Comments {
			for _, line := range c.List {
				tagged = tagged || line.Text == "//go:build slipway_fake"
			}
		}
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); slices.Contains(testOnly, p) && !tagged {
				t.Errorf("%s imports %s without //go:build slipway_fake: it would ship in the product binary", path, p)
			}
		}
	}
}

// The product binary holds the product: go list, which resolves build
// tags as go build does, finds no package of the test rig (integration/,
// the fake kind) among cmd/slipway's dependencies. The demo, which needs
// the rig, is its own command (cmd/slipway-demo).
func TestProductBinaryHoldsNoTestRig(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/slipway").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/slipway: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"server") {
		t.Fatalf("go list -deps ./cmd/slipway does not list the server: %q", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, module+"integration/") || slices.Contains(testOnly, d) {
			t.Errorf("cmd/slipway depends on %s, a package of the test rig", d)
		}
	}
}
