package strictyaml

import (
	"strings"
	"testing"
)

type inner struct {
	Port  int               `yaml:"port"`
	Ratio float64           `yaml:"ratio"`
	Tags  map[string]string `yaml:"tags"`
}

type doc struct {
	Name  string   `yaml:"name"`
	On    bool     `yaml:"on"`
	Items []inner  `yaml:"items"`
	Ptr   *inner   `yaml:"ptr"`
	List  []string `yaml:"list"`
}

func TestDecodeCollectsEveryProblemWithPositions(t *testing.T) {
	t.Parallel()
	src := `name: x
on: yes
items:
  - {port: 80, ratio: 1}
  - {port: "eighty", colour: red, tags: {"a.b": 1}}
ptr: {port: 99999999999999999999}
list: [a, [b]]
`
	var d doc
	pos, errs := Decode("f.yaml", []byte(src), &d, DefaultLimits)
	got := errs.Error()
	for _, want := range []string{
		`f.yaml:2:5: on: expected true or false, found text "yes"`,
		`f.yaml:5:12: items[1].port: expected a whole number, found text "eighty"`,
		`f.yaml:5:22: items[1].colour: unknown field "colour"`,
		`f.yaml:5:49: items[1].tags["a.b"]: expected text, found a whole number "1"; quote it if you mean text`,
		`f.yaml:6:13: ptr.port: expected a whole number`,
		`f.yaml:7:11: list[1]: expected text, found a list`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if len(errs) != 6 {
		t.Errorf("%d problems, want 6:\n%s", len(errs), got)
	}
	if d.Name != "x" || d.Items[0].Port != 80 || d.Items[0].Ratio != 1 {
		t.Errorf("good values not decoded: %+v", d)
	}
	if p := pos.At("items[1].tags"); p != (Pos{5, 41}) {
		t.Errorf("At(items[1].tags) = %v", p)
	}
	if p := pos.At("items[0].nothing.deeper"); p != (Pos{4, 5}) {
		t.Errorf("At falls back to the nearest ancestor: %v", p)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	names := []string{"stages", "secrets", "metadata", "on"}
	for in, want := range map[string]string{"stpes": "stages", "secret": "secrets", "metdata": "metadata", "xyz": "", "o": ""} {
		if got := Suggest(in, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJoinKeyAndParentPath(t *testing.T) {
	t.Parallel()
	if got := JoinKey(JoinKey("", "env"), "a.b"); got != `env["a.b"]` {
		t.Errorf("JoinKey = %s", got)
	}
	for in, want := range map[string]string{`stages[4].canary.steps[1]`: `stages[4].canary.steps`, `env["a.b"]`: "env", "name": ""} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%s) = %s, want %s", in, got, want)
		}
	}
}
