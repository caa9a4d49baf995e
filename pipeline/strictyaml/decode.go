package strictyaml

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits bound what one document may cost to decode.
type Limits struct {
	MaxBytes int // larger inputs are refused before parsing
	MaxNodes int // nodes visited, counting each alias expansion again
}

// DefaultLimits suit hand-written configuration files.
var DefaultLimits = Limits{MaxBytes: 1 << 20, MaxNodes: 100_000}

// Pos is a 1-based line and column.
type Pos struct{ Line, Col int }

// Positions maps a field path (as in Error.Path) to where its value stands.
type Positions map[string]Pos

// At returns the position of path, or of its nearest ancestor that has one.
func (p Positions) At(path string) Pos {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		if path == "" {
			return Pos{}
		}
		path = parentPath(path)
	}
}

// Unmarshaler lets a type decode its own node, for values that may be
// written in more than one shape (a number or a mapping, say).
type Unmarshaler interface {
	UnmarshalStrictYAML(v *Value)
}

// UnknownFieldHinter lets a struct explain an unknown key better than
// "unknown field" (for example, an unknown stage kind).
type UnknownFieldHinter interface {
	UnknownFieldHint(key string) string
}

// Decode parses data as exactly one YAML document and decodes it into out,
// which must be a non-nil pointer. Every problem is returned as Errors,
// with file used as Error.File. Positions are returned even when there are
// problems, so a caller can add semantic errors in the same list.
func Decode(file string, data []byte, out any, lim Limits) (Positions, Errors) {
	fail := func(line, col int, format string, args ...any) (Positions, Errors) {
		return Positions{}, Errors{{File: file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}}
	}
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return fail(0, 0, "file is larger than the limit of %d bytes", lim.MaxBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, 0, "file is empty")
		}
		line, msg := yamlSyntaxError(err)
		return fail(line, 1, "%s", msg)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fail(extra.Line, extra.Column, "file holds more than one YAML document; only one is allowed")
	} else if !errors.Is(err, io.EOF) {
		line, msg := yamlSyntaxError(err)
		return fail(line, 1, "%s", msg)
	}
	d := &decoder{file: file, pos: Positions{}, budget: lim.MaxNodes}
	if lim.MaxNodes <= 0 {
		d.budget = DefaultLimits.MaxNodes
	}
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("strictyaml: Decode needs a non-nil pointer")
	}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	d.decode(n, rv.Elem(), "")
	if d.exhausted {
		// What was decoded is cut short; only the refusal is worth reading.
		return Positions{}, Errors{d.errs[d.exhaustedAt]}
	}
	return d.pos, d.errs
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// zeroBasedLine lists yaml.v3 messages whose line number is the 0-based
// line of the enclosing construct (its "context mark") rather than 1-based.
var zeroBasedLine = []string{"did not find expected", "found a tab character"}

// yamlSyntaxError pulls the line out of yaml.v3's "yaml: line N: msg".
func yamlSyntaxError(err error) (int, string) {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
	}
	line, _ := strconv.Atoi(m[1])
	for _, prefix := range zeroBasedLine {
		if strings.HasPrefix(m[2], prefix) {
			line++
		}
	}
	return line, "invalid YAML: " + m[2]
}

type decoder struct {
	file        string
	pos         Positions
	errs        Errors
	budget      int
	exhausted   bool
	exhaustedAt int
}

// Value is a node being decoded, handed to an Unmarshaler.
type Value struct {
	d    *decoder
	n    *yaml.Node
	path string
}

// IsScalar reports whether the node is a plain value (not a list or mapping).
func (v *Value) IsScalar() bool { return v.n.Kind == yaml.ScalarNode }

// IsMapping reports whether the node is a mapping.
func (v *Value) IsMapping() bool { return v.n.Kind == yaml.MappingNode }

// Decode decodes the node into out (a pointer) with the usual strict rules.
func (v *Value) Decode(out any) { v.d.decode(v.n, reflect.ValueOf(out).Elem(), v.path) }

// Failf records a problem at this node.
func (v *Value) Failf(format string, args ...any) { v.d.failf(v.n, v.path, format, args...) }

func (d *decoder) failf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType     = reflect.TypeFor[Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget--; d.budget < 0 {
		if !d.exhausted {
			d.exhausted, d.exhaustedAt = true, len(d.errs)
			d.failf(n, path, "document expands to too many nodes (an alias bomb?); refused")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = Pos{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent and null mean the same: the zero value
	}
	if v.Kind() != reflect.Pointer && v.CanAddr() {
		switch p := v.Addr(); {
		case p.Type().Implements(unmarshalerType):
			p.Interface().(Unmarshaler).UnmarshalStrictYAML(&Value{d: d, n: n, path: path})
			return
		case p.Type().Implements(textUnmarshalerType):
			d.decodeText(n, p.Interface().(encoding.TextUnmarshaler), path)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeText(n *yaml.Node, u encoding.TextUnmarshaler, path string) {
	if n.Kind != yaml.ScalarNode {
		d.failf(n, path, "expected a single value, found %s", describe(n))
		return
	}
	if err := u.UnmarshalText([]byte(n.Value)); err != nil {
		d.failf(n, path, "%v", err)
	}
}

// keys walks a mapping's pairs, refusing merge keys, non-text keys and
// duplicates, and calls f for each remaining pair.
func (d *decoder) keys(n *yaml.Node, path string, f func(key string, k, val *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		switch {
		case k.Tag == "!!merge":
			d.failf(k, path, "merge keys (<<) are not supported; repeat the fields or use a plain alias")
			continue
		case k.Kind != yaml.ScalarNode:
			d.failf(k, path, "mapping keys must be plain text, found %s", describe(k))
			continue
		case seen[k.Value]:
			d.failf(k, JoinKey(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		f(k.Value, k, val)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.failf(n, path, "expected a mapping, found %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	d.keys(n, path, func(key string, k, val *yaml.Node) {
		idx, ok := fields[key]
		if !ok {
			d.failf(k, JoinKey(path, key), "%s", unknownField(v, key, fields))
			return
		}
		d.decode(val, v.Field(idx), JoinKey(path, key))
	})
}

func unknownField(v reflect.Value, key string, fields map[string]int) string {
	if v.CanAddr() {
		if h, ok := v.Addr().Interface().(UnknownFieldHinter); ok {
			if msg := h.UnknownFieldHint(key); msg != "" {
				return msg
			}
		}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	msg := fmt.Sprintf("unknown field %q", key)
	if s := Suggest(key, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.failf(n, path, "expected a mapping, found %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("strictyaml: only maps with string keys are supported")
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	d.keys(n, path, func(key string, _, val *yaml.Node) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, JoinKey(path, key))
		v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
	})
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.failf(n, path, "expected a list, found %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.failf(n, path, "expected %s, found %s", kindName(v.Kind()), describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag != "!!str" {
			d.failf(n, path, "expected text, found %s %q; quote it if you mean text", describe(n), n.Value)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Tag != "!!bool" || err != nil {
			d.failf(n, path, "expected true or false, found %s %q", describe(n), n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if n.Tag != "!!int" || err != nil {
			d.failf(n, path, "expected a whole number, found %s %q", describe(n), n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, v.Type().Bits())
		if (n.Tag != "!!float" && n.Tag != "!!int") || err != nil {
			d.failf(n, path, "expected a number, found %s %q", describe(n), n.Value)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("strictyaml: unsupported Go kind %s at %s", v.Kind(), path))
	}
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "a whole number"
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return "text"
	case "!!int":
		return "a whole number"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a value tagged " + n.Tag
}

// fieldsOf maps yaml tag names to field indexes. Fields without a yaml tag
// or tagged "-" are not decodable.
func fieldsOf(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// JoinKey appends a mapping key to a field path: a.b, or a["x.y"] when the
// key is not a plain identifier.
func JoinKey(path, key string) string {
	if !identifier.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath drops the last element of a field path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}
