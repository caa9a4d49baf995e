package pipeline

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

// Data is what stage settings can refer to in templates, e.g.
// "{{ .Stages.build.digest }}" or "{{ .Run.ShortSHA }}".
type Data struct {
	Pipeline string
	App      string
	Run      RunData
	Params   map[string]string
	Secrets  map[string]string
	Stages   map[string]map[string]string // outputs of the stages that already ran

	budget *Budget // what the run's templates may still render; nil: no run budget
}

// Charging returns d with renders against it charged to b (a run's Budget).
func (d *Data) Charging(b *Budget) *Data {
	d.budget = b
	return d
}

// RunData describes the run being executed.
type RunData struct {
	ID       int64
	Event    string // push, tag, schedule, manual
	Repo     string
	Ref      string // refs/heads/main, refs/tags/v1.2.0, …
	Branch   string // set for branch pushes
	Tag      string // set for tag pushes
	SHA      string
	ShortSHA string
}

// lateTag marks a field rendered by its stage with the stage's own data
// (an analysis query sees .Canary, .Stable, .Interval), not by the runner.
const lateTag = "late"

var topFields = fieldNames(reflect.TypeFor[Data]())
var runFields = fieldNames(reflect.TypeFor[RunData]())

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			names = append(names, t.Field(i).Name)
		}
	}
	return names
}

// newTemplate parses text as a pipeline template: the bounded function
// set, and none of what restrict refuses.
func newTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	if err := restrict(t); err != nil {
		return nil, err
	}
	return t, nil
}

// RenderString renders one template against data, bounded (see
// ExecuteBounded), and charges its output to data's run budget.
func RenderString(name, text string, data *Data) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	out, err := ExecuteBounded(name, text, data)
	if err != nil {
		return "", err
	}
	if err := data.budget.spend(len(out)); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// RenderSpec returns a deep copy of a stage's settings (one of the *Spec
// types) with every template field rendered against data. Fields rendered
// later by the stage itself are copied unchanged.
func RenderSpec(stage string, spec any, data *Data) (any, error) {
	src := reflect.ValueOf(spec)
	if src.Kind() != reflect.Pointer || src.IsNil() {
		return nil, fmt.Errorf("rendering stage %s: no settings", stage)
	}
	dst := reflect.New(src.Elem().Type())
	var errs []string
	copyRendered(dst.Elem(), src.Elem(), stage, false, func(path, text string, late bool) string {
		if late {
			return text
		}
		out, err := RenderString(path, text, data)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
		}
		return out
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("rendering stage %s: %s", stage, strings.Join(errs, "; "))
	}
	return dst.Interface(), nil
}

// copyRendered deep-copies src into dst, passing every string through
// render, which is told whether the field is late.
func copyRendered(dst, src reflect.Value, path string, late bool, render func(path, text string, late bool) string) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Elem().Type()))
		copyRendered(dst.Elem(), src.Elem(), path, late, render)
	case reflect.Struct:
		for i := range src.NumField() {
			f := src.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			copyRendered(dst.Field(i), src.Field(i), strictyaml.JoinKey(path, name), late || f.Tag.Get("slipway") == lateTag, render)
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			copyRendered(dst.Index(i), src.Index(i), fmt.Sprintf("%s[%d]", path, i), late, render)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		for _, k := range src.MapKeys() {
			v := reflect.New(src.Type().Elem()).Elem()
			copyRendered(v, src.MapIndex(k), strictyaml.JoinKey(path, k.String()), late, render)
			dst.SetMapIndex(k, v)
		}
	case reflect.String:
		dst.SetString(render(path, src.String(), late))
	default:
		dst.Set(src)
	}
}

// checkTemplate parses text and checks the names it uses against Data:
// top-level fields, .Run fields, and .Stages.NAME of a stage that runs
// earlier (earlier lists those names). late templates are only parsed.
func checkTemplate(text string, earlier []string, late bool) error {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t, err := newTemplate("t", text)
	if err != nil {
		return fmt.Errorf("bad template: %s", strings.TrimPrefix(err.Error(), "template: t:"))
	}
	if late {
		return nil
	}
	var problem error
	walkFields(t.Root, func(ident []string) {
		if problem != nil {
			return
		}
		problem = checkFieldChain(ident, earlier)
	})
	return problem
}

func checkFieldChain(ident []string, earlier []string) error {
	if !slices.Contains(topFields, ident[0]) {
		return fmt.Errorf("template refers to .%s; known: .%s", ident[0], strings.Join(topFields, ", ."))
	}
	if len(ident) < 2 {
		return nil
	}
	switch ident[0] {
	case "Run":
		if !slices.Contains(runFields, ident[1]) {
			return fmt.Errorf("template refers to .Run.%s; known: .Run.%s", ident[1], strings.Join(runFields, ", .Run."))
		}
	case "Stages":
		if !slices.Contains(earlier, ident[1]) {
			return fmt.Errorf("template refers to .Stages.%s, which is not a stage that runs before this one", ident[1])
		}
	}
	return nil
}

// walkFields calls f with the identifiers of every .A.B.C field chain.
func walkFields(n parse.Node, f func([]string)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				walkFields(c, f)
			}
		}
	case *parse.ActionNode:
		walkFields(n.Pipe, f)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkFields(c, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkFields(a, f)
		}
	case *parse.FieldNode:
		f(n.Ident)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, f)
	case *parse.RangeNode: // inside, "." is the element: only the pipe is checked
		walkFields(n.Pipe, f)
	case *parse.WithNode:
		walkFields(n.Pipe, f)
	}
}

func walkBranch(b *parse.BranchNode, f func([]string)) {
	walkFields(b.Pipe, f)
	walkFields(b.List, f)
	if b.ElseList != nil {
		walkFields(b.ElseList, f)
	}
}
