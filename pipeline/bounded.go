package pipeline

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"
	"time"
)

// What one template may cost. A pipeline read from a repository is
// written by anyone who can push, and its templates are rendered by the
// engine (a concurrency group while a webhook is answered): each render
// is bounded in what it writes, in what each function returns and in
// time, and a run's renders together in bytes (Budget).
const (
	MaxRenderBytes = 64 << 10               // one template's output
	MaxValueBytes  = 4 << 10                // what one print, printf, println or urlquery returns
	MaxRenderTime  = 250 * time.Millisecond // one template's execution
	MaxRunRender   = 4 << 20                // every template a run renders, together (default Budget)
)

// What the functions of one render may make together, and the longest
// string constant a template may hold: with no loops, these and the file's
// size bound a render's work.
const (
	maxFuncBytes   = 256 << 10
	maxConstantLen = MaxValueBytes
)

// templateFuncs are the only functions a template may call: comparisons,
// logic, len and index from text/template, and the functions that make
// text (printf without width or precision, which manufacture output from
// nothing). Parsing knows them by these; each render binds its own
// (renderBudget.funcs), which bound what they take, make and how long
// they run.
var templateFuncs = (&renderBudget{deadline: time.Now()}).funcs()

var allowedFuncs = []string{"and", "eq", "ge", "gt", "index", "le", "len", "lt", "ne", "not", "or", "print", "printf", "println", "urlquery"}

// renderBudget is what the text-making functions of one render may still
// spend: bytes in all, and time. Each call checks its arguments' size
// before formatting them (formatting builds the whole result first), and
// its result after.
type renderBudget struct {
	deadline time.Time
	limit    time.Duration // what the deadline was set at, for the error
	made     int
}

func (b *renderBudget) funcs() template.FuncMap {
	return template.FuncMap{
		"print": func(a ...any) (string, error) { return b.make("print", a, func() string { return fmt.Sprint(a...) }) },
		"println": func(a ...any) (string, error) {
			return b.make("println", a, func() string { return fmt.Sprintln(a...) })
		},
		"urlquery": func(a ...any) (string, error) {
			return b.make("urlquery", a, func() string { return url.QueryEscape(fmt.Sprint(a...)) })
		},
		"printf": func(format string, a ...any) (string, error) {
			if err := checkFormat(format); err != nil {
				return "", err
			}
			return b.make("printf", append([]any{format}, a...), func() string { return fmt.Sprintf(format, a...) })
		},
	}
}

// make runs format for function fn with arguments args within the budget.
func (b *renderBudget) make(fn string, args []any, format func() string) (string, error) {
	in := 0
	for _, a := range args {
		in += argSize(a)
	}
	if in > MaxValueBytes {
		return "", fmt.Errorf("%s was given %d bytes, more than the %d a template function may take", fn, in, MaxValueBytes)
	}
	if time.Now().After(b.deadline) {
		return "", fmt.Errorf("the template ran longer than %s", b.limit)
	}
	s := format()
	if len(s) > MaxValueBytes {
		return "", fmt.Errorf("%s made %d bytes, more than the %d a template function may", fn, len(s), MaxValueBytes)
	}
	if b.made += len(s); b.made > maxFuncBytes {
		return "", fmt.Errorf("the template's functions made more than %d bytes", maxFuncBytes)
	}
	return s, nil
}

// argSize is what formatting a makes at least, known without formatting
// it: a string's or a byte slice's length; other values (numbers, the
// run's data) are small, and are counted by formatting them alone.
func argSize(a any) int {
	switch v := a.(type) {
	case string:
		return len(v)
	case []byte:
		return len(v)
	case fmt.Stringer:
		return len(v.String())
	}
	return len(fmt.Sprint(a))
}

// printfDirective is one directive of a format: flags, width, precision and
// argument indexes are refused (a width of 999999 is a megabyte of
// padding); only the verb itself is allowed.
var printfDirective = regexp.MustCompile(`%[^a-zA-Z%]*[a-zA-Z%]?`)

// checkFormat refuses a printf format with anything but plain verbs;
// templates check a literal format when parsed, and printf each at its call.
func checkFormat(format string) error {
	for _, d := range printfDirective.FindAllString(format, -1) {
		if len(d) != 2 {
			return fmt.Errorf("printf directive %q: only a plain verb (%%s, %%d, %%v, %%q…) is allowed in a pipeline template, without flags, width or precision", d)
		}
	}
	return nil
}

func isIdent(n parse.Node, name string) bool {
	id, ok := n.(*parse.IdentifierNode)
	return ok && id.Ident == name
}

// restrict refuses what a pipeline template may not do: call a function
// outside allowedFuncs, range (over a number it is a loop of any length),
// or define and call templates (recursion).
func restrict(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return errors.New("define and block are not allowed in a pipeline template")
	}
	if t.Tree == nil {
		return nil
	}
	return restrictNode(t.Root)
}

func restrictNode(n parse.Node) error {
	var err error
	each := func(nodes ...parse.Node) {
		for _, c := range nodes {
			if err == nil && c != nil && !isNilNode(c) {
				err = restrictNode(c)
			}
		}
	}
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			each(c)
		}
	case *parse.ActionNode:
		each(n.Pipe)
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			each(c)
		}
	case *parse.CommandNode:
		if len(n.Args) > 1 && isIdent(n.Args[0], "printf") {
			if f, ok := n.Args[1].(*parse.StringNode); ok {
				if err := checkFormat(f.Text); err != nil {
					return err
				}
			}
		}
		each(n.Args...)
	case *parse.ChainNode:
		each(n.Node)
	case *parse.IfNode:
		each(n.Pipe, n.List, n.ElseList)
	case *parse.WithNode:
		each(n.Pipe, n.List, n.ElseList)
	case *parse.StringNode:
		if len(n.Text) > maxConstantLen {
			return fmt.Errorf("a string constant of %d bytes; a pipeline template may hold at most %d", len(n.Text), maxConstantLen)
		}
	case *parse.IdentifierNode:
		if !slices.Contains(allowedFuncs, n.Ident) {
			return fmt.Errorf("function %s is not allowed in a pipeline template (allowed: %s)", n.Ident, strings.Join(allowedFuncs, ", "))
		}
	case *parse.RangeNode:
		return errors.New("range is not allowed in a pipeline template")
	case *parse.TemplateNode:
		return fmt.Errorf("template %q: calling templates is not allowed in a pipeline template", n.Name)
	case *parse.BreakNode, *parse.ContinueNode:
		return errors.New("break and continue are not allowed in a pipeline template")
	}
	return err
}

// isNilNode reports whether n is a typed nil (an IfNode without else has
// a nil *ListNode).
func isNilNode(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		return n == nil
	case *parse.PipeNode:
		return n == nil
	}
	return false
}

// boundedWriter takes a render's output up to MaxRenderBytes and until
// its deadline; past either it fails the render.
type boundedWriter struct {
	strings.Builder
	deadline time.Time
	limit    time.Duration
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > MaxRenderBytes {
		return 0, fmt.Errorf("the template's output passed %d bytes", MaxRenderBytes)
	}
	if time.Now().After(w.deadline) {
		return 0, fmt.Errorf("the template ran longer than %s", w.limit)
	}
	return w.Builder.Write(p)
}

// Budget bounds what every template of one run renders together; it is
// safe for concurrent use.
type Budget struct{ left atomic.Int64 }

// NewBudget is a budget of max bytes.
func NewBudget(max int64) *Budget {
	b := &Budget{}
	b.left.Store(max)
	return b
}

func (b *Budget) spend(n int) error {
	if b == nil {
		return nil
	}
	if b.left.Add(-int64(n)) < 0 {
		return errors.New("the run's templates together rendered more than their budget; fewer or shorter templates would")
	}
	return nil
}

// ExecuteBounded parses text under the restrictions of pipeline templates
// and executes it against data, within MaxRenderBytes and MaxRenderTime.
// Stages that render their own templates (analysis queries) use it too.
func ExecuteBounded(name, text string, data any) (string, error) {
	return executeWithin(name, text, data, MaxRenderTime)
}

// executeWithin is ExecuteBounded with the time it may take.
func executeWithin(name, text string, data any, limit time.Duration) (string, error) {
	t, err := newTemplate(name, text)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(limit)
	t.Funcs((&renderBudget{deadline: deadline, limit: limit}).funcs()) // this render's own
	w := &boundedWriter{deadline: deadline, limit: limit}
	if err := t.Execute(w, data); err != nil {
		return "", err
	}
	return w.String(), nil
}
