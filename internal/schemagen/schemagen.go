// Package schemagen writes a JSON Schema (draft 2020-12) of a YAML file
// from the Go model it is decoded into: each struct is an object whose
// properties are its yaml-tagged fields, described by their doc comments,
// and which refuses any other key, as the strict decoder does. Types that
// decode by rules of their own (a scalar or a list, a reference that is
// never a value) and constraints the model cannot say by its types
// (enums, patterns, ranges, required fields) are given by the caller.
//
// It serves the schema test, which writes docs/schema/ and checks that
// the schemas agree with the loaders on every example and test file.
package schemagen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"reflect"
	"strings"
)

// Schema is one JSON Schema object.
type Schema = map[string]any

// Generator turns Go types into one schema document.
type Generator struct {
	// Docs holds the doc comment of each field, keyed "pkgpath.Type.Field"
	// (ReadDocs fills it).
	Docs map[string]string
	// Custom gives the whole schema of types decoded by their own rules.
	Custom map[reflect.Type]Schema
	// Scalars gives, for a struct that may also be written as one value
	// (a step as its weight), that value's schema.
	Scalars map[reflect.Type]Schema
	// Hints are keywords merged into a field's schema, keyed
	// "Type.yamlName" (the struct's Go name, the field's YAML name), and
	// into a struct's own schema, keyed "Type".
	Hints map[string]Schema

	defs map[string]Schema
	seen map[string]reflect.Type
	used map[string]bool
}

// Generate is the schema of root, with its structs under $defs.
func (g *Generator) Generate(title string, root reflect.Type) (Schema, error) {
	g.defs, g.seen, g.used = map[string]Schema{}, map[string]reflect.Type{}, map[string]bool{}
	top, err := g.of(root)
	if err != nil {
		return nil, err
	}
	for key := range g.Hints {
		if !g.used[key] {
			return nil, fmt.Errorf("hint %q matches no struct or field of %s", key, root)
		}
	}
	s := Schema{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"title":   title,
		"$defs":   g.defs,
	}
	maps.Copy(s, top)
	return s, nil
}

// of is the schema of a value of type t.
func (g *Generator) of(t reflect.Type) (Schema, error) {
	if c, ok := g.Custom[t]; ok {
		return maps.Clone(c), nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.of(t.Elem())
	case reflect.String:
		return Schema{"type": "string"}, nil
	case reflect.Bool:
		return Schema{"type": "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return Schema{"type": "integer"}, nil
	case reflect.Float32, reflect.Float64:
		return Schema{"type": "number"}, nil
	case reflect.Slice:
		items, err := g.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return Schema{"type": "array", "items": items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map keys must be text", t)
		}
		values, err := g.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return Schema{"type": "object", "additionalProperties": values}, nil
	case reflect.Struct:
		return g.object(t)
	}
	return nil, fmt.Errorf("%s: no schema for a %s", t, t.Kind())
}

// object refers to t's schema under $defs, or to that or its scalar form.
func (g *Generator) object(t reflect.Type) (Schema, error) {
	ref := Schema{"$ref": "#/$defs/" + t.Name()}
	if err := g.define(t); err != nil {
		return nil, err
	}
	if scalar, ok := g.Scalars[t]; ok {
		return Schema{"anyOf": []any{scalar, ref}}, nil
	}
	return ref, nil
}

// define puts the schema of struct t under $defs, once.
func (g *Generator) define(t reflect.Type) error {
	name := t.Name()
	if prev, ok := g.seen[name]; ok {
		if prev != t {
			return fmt.Errorf("two types are named %s: %s and %s", name, prev, t)
		}
		return nil
	}
	g.seen[name] = t
	props := Schema{}
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		p, err := g.of(f.Type)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", name, f.Name, err)
		}
		if doc := g.Docs[t.PkgPath()+"."+name+"."+f.Name]; doc != "" {
			if rest, ok := strings.CutPrefix(doc, f.Name+" "); ok {
				doc = key + " " + rest // the name the file's author writes
			}
			p["description"] = doc
		}
		g.hint(p, name+"."+key)
		props[key] = p
	}
	s := Schema{"type": "object", "properties": props, "additionalProperties": false}
	g.hint(s, name)
	g.defs[name] = s
	return nil
}

// hint merges the hint for key into s. A $ref is kept beside the
// hint's keywords (draft 2020-12 applies both).
func (g *Generator) hint(s Schema, key string) {
	if h, ok := g.Hints[key]; ok {
		maps.Copy(s, h)
		g.used[key] = true
	}
}

// ReadDocs adds the doc comments (or end-of-line comments) of the struct
// fields declared in dir's non-test Go files, whose import path is
// pkgPath, to docs.
func ReadDocs(dir, pkgPath string, docs map[string]string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			return fmt.Errorf("reading doc comments: %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := spec.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, field := range st.Fields.List {
				doc := field.Doc.Text()
				if doc == "" {
					doc = field.Comment.Text()
				}
				for _, id := range field.Names {
					docs[pkgPath+"."+spec.Name.Name+"."+id.Name] = strings.Join(strings.Fields(doc), " ")
				}
			}
			return false
		})
	}
	return nil
}
