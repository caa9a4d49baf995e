package schemagen_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/internal/schemagen"
	"github.com/slipwayci/slipway/pipeline"
)

var update = flag.Bool("update", false, "rewrite docs/schema/*.json from the model")

// root is the repository, from this package's directory.
const root = "../.."

type Schema = schemagen.Schema

// A schemaFile is one file format: its model, where its schema is kept
// and the files of that format the schema must judge as its loader does.
type schemaFile struct {
	name, title string
	model       reflect.Type
	hints       map[string]Schema
	load        func(path string, data []byte) error
	files       []string // globs, from the repository's root
}

var formats = []schemaFile{
	{
		name:  "pipeline",
		title: "Slipway pipeline file",
		model: reflect.TypeFor[pipeline.Pipeline](),
		hints: pipelineHints(),
		load: func(path string, data []byte) error {
			_, err := pipeline.Parse(path, data)
			return err
		},
		files: []string{"configs/examples/*.yaml", "pipeline/testdata/*.yaml"},
	},
	{
		name:  "engine-config",
		title: "Slipway engine config",
		model: reflect.TypeFor[engineconfig.Config](),
		hints: engineHints(),
		load: func(path string, _ []byte) error {
			_, err := engineconfig.Load(path)
			return err
		},
		files: []string{"configs/slipway.yaml", "engineconfig/testdata/*.yaml"},
	},
}

func (f schemaFile) path() string { return filepath.Join(root, "docs", "schema", f.name+".json") }

// generate is the format's schema, as the JSON kept in docs/schema/.
func (f schemaFile) generate(t *testing.T) []byte {
	t.Helper()
	docs := map[string]string{}
	for _, dir := range []string{"pipeline", "engineconfig"} {
		if err := schemagen.ReadDocs(filepath.Join(root, dir), "github.com/slipwayci/slipway/"+dir, docs); err != nil {
			t.Fatal(err)
		}
	}
	g := &schemagen.Generator{Docs: docs, Custom: customTypes(), Scalars: scalarForms(), Hints: f.hints}
	s, err := g.Generate(f.title, f.model)
	if err != nil {
		t.Fatalf("generating the %s schema: %v", f.name, err)
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// The schemas in docs/schema/ are the model's: a change of the model
// without `make schemas` fails here.
func TestSchemasAreCurrent(t *testing.T) {
	for _, f := range formats {
		want := f.generate(t)
		if *update {
			if err := os.WriteFile(f.path(), want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.path())
		if err != nil {
			t.Fatalf("%v (make schemas writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not the model's schema: run make schemas", f.path())
		}
	}
}

// Every example and test file is judged by the schema as its loader
// judges it: what the engine refuses (a .bad.yaml) an editor refuses too,
// and what it accepts the editor accepts. Files bad only when read from a
// repository (.untrusted.bad.yaml) are good files for the operator, and
// both accept them. The one thing beyond a schema is what a template
// inside a text says: a file whose only problems are bad templates is
// refused by the engine alone.
func TestSchemasAgreeWithTheLoaders(t *testing.T) {
	for _, f := range formats {
		schema := compile(t, f)
		var paths []string
		for _, glob := range f.files {
			m, _ := filepath.Glob(filepath.Join(root, glob))
			paths = append(paths, m...)
		}
		if len(paths) < 2 {
			t.Fatalf("%s: found only %d files to judge", f.name, len(paths))
		}
		bad := 0
		for _, path := range paths {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			loaderErr := f.load(path, data)
			schemaErr := validate(schema, data)
			if loaderErr != nil {
				bad++
			}
			if loaderErr != nil && schemaErr == nil && onlyTemplates(loaderErr) {
				continue
			}
			if (loaderErr == nil) != (schemaErr == nil) {
				t.Errorf("%s: the loader says %v; the schema says %v", path, orOK(loaderErr), orOK(schemaErr))
			}
		}
		if bad == 0 {
			t.Errorf("%s: no bad file was judged", f.name)
		}
	}
}

// Each example names its schema the way YAML editors read it, so they
// complete and check it.
func TestExamplesNameTheirSchema(t *testing.T) {
	examples, _ := filepath.Glob(filepath.Join(root, "configs", "examples", "*.yaml"))
	want := map[string]string{filepath.Join(root, "configs", "slipway.yaml"): "../docs/schema/engine-config.json"}
	for _, e := range examples {
		want[e] = "../../docs/schema/pipeline.json"
	}
	for path, schema := range want {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		if first != "# yaml-language-server: $schema="+schema {
			t.Errorf("%s: first line %q does not name %s", path, first, schema)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), schema)); err != nil {
			t.Errorf("%s names a schema that is not there: %v", path, err)
		}
	}
}

// Each field of each format is described in its reference.
func TestEveryFieldIsDocumented(t *testing.T) {
	refs := map[string]string{"pipeline": "docs/pipeline.md", "engine-config": "docs/engine-config.md"}
	for _, f := range formats {
		doc, err := os.ReadFile(filepath.Join(root, refs[f.name]))
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Defs map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"$defs"`
		}
		if err := json.Unmarshal(f.generate(t), &s); err != nil {
			t.Fatal(err)
		}
		for name, def := range s.Defs {
			for field := range def.Properties {
				// `field`, `field: …`, a path to it (`trivy.server`, `tokens[].role`)
				// or from it (`sandbox.registries`)
				written := regexp.MustCompile("`([A-Za-z0-9]+(\\[\\])?\\.)*" + regexp.QuoteMeta(field) + "[`:.[]")
				if !written.Match(doc) {
					t.Errorf("%s: %s.%s is not documented (write it as `%s`)", refs[f.name], name, field, field)
				}
			}
		}
	}
}

// onlyTemplates says whether every problem the loader found is a bad
// template.
func onlyTemplates(err error) bool {
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, ": bad template: ") {
			return false
		}
	}
	return true
}

func orOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func compile(t *testing.T, f schemaFile) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(f.generate(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	url := "file:///schema/" + f.name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compiling the %s schema: %v", f.name, err)
	}
	return s
}

// validate reads one YAML document as an editor's YAML support does and
// checks it against the schema.
func validate(s *jsonschema.Schema, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("reading YAML: %w", err)
	}
	var next any
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return errors.New("more than one document")
	}
	js, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("not JSON-shaped: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// customTypes are the types that decode by rules of their own.
func customTypes() map[reflect.Type]Schema {
	ref := secretRef()
	return map[reflect.Type]Schema{
		reflect.TypeFor[pipeline.Duration](): {"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$`,
			"description": "a duration, like 90s, 5m or 1h30m"},
		reflect.TypeFor[pipeline.StringList](): {"oneOf": []any{Schema{"type": "string"}, Schema{"type": "array", "items": Schema{"type": "string"}}}},
		reflect.TypeFor[pipeline.SecretRef]():  ref,
		reflect.TypeFor[pipeline.SecretRefs](): {"oneOf": []any{
			Schema{"type": "object", "additionalProperties": ref, "propertyNames": Schema{"pattern": pipeline.EnvName.String()}},
			Schema{"type": "array", "items": Schema{"type": "string", "pattern": pipeline.EnvName.String()}, "uniqueItems": true},
		}},
	}
}

// secretRef is where a secret's value comes from: never the value itself.
func secretRef() Schema {
	return Schema{
		"type":        "object",
		"description": "where a secret's value comes from: an environment variable of the engine ({env: VAR}) or a file ({file: PATH}); never the value",
		"properties": Schema{
			"env":  Schema{"type": "string", "pattern": pipeline.EnvName.String()},
			"file": Schema{"type": "string", "minLength": 1},
		},
		"additionalProperties": false, "minProperties": 1, "maxProperties": 1,
	}
}

func scalarForms() map[reflect.Type]Schema {
	return map[reflect.Type]Schema{
		reflect.TypeFor[pipeline.Step](): {"type": "integer", "minimum": 1, "maximum": 100, "description": "the canary's weight in percent"},
	}
}

func enum(values ...string) Schema { return Schema{"enum": values} }

func items(s Schema) Schema { return Schema{"items": s} }

func pattern(p string) Schema { return Schema{"pattern": p} }

// glob is a glob whose brackets close.
var glob = items(pattern(`^([^\[\]]|\[[^\]]+\])*$`))

func pipelineHints() map[string]Schema {
	kinds := make([]any, len(pipeline.Kinds))
	for i, k := range pipeline.Kinds {
		kinds[i] = Schema{"required": []string{k}}
	}
	quantities := Schema{"propertyNames": enum("cpu", "memory", "ephemeral-storage"),
		"additionalProperties": Schema{"type": "string", "pattern": pipeline.Quantity.String()}}
	executor := enum("local", "kubernetes")
	return map[string]Schema{
		"Pipeline":                 {"required": []string{"apiVersion", "kind", "metadata", "stages"}},
		"Pipeline.apiVersion":      {"const": pipeline.APIVersion},
		"Pipeline.kind":            {"const": pipeline.Kind},
		"Pipeline.env":             {"propertyNames": pattern(pipeline.EnvName.String())},
		"Pipeline.stages":          {"minItems": 1},
		"Metadata":                 {"required": []string{"name"}},
		"Metadata.name":            pattern(pipeline.PipelineName.String()),
		"Metadata.app":             pattern(pipeline.PipelineName.String()),
		"PushTrigger.branches":     glob,
		"PushTrigger.tags":         glob,
		"PushTrigger.paths":        glob,
		"Concurrency.policy":       enum(pipeline.PolicyQueue, pipeline.PolicyCancelPrevious),
		"Stage":                    {"required": []string{"name"}, "oneOf": kinds},
		"Stage.name":               pattern(pipeline.StageName.String()),
		"When.events":              items(enum(pipeline.EventPush, pipeline.EventTag, pipeline.EventSchedule, pipeline.EventManual)),
		"When.branches":            glob,
		"CloneSpec.depth":          {"minimum": -1},
		"CloneSpec.engine":         enum("auto", "go-git", "git"),
		"BuildSpec":                {"required": []string{"image"}},
		"BuildSpec.executor":       executor,
		"RunSpec":                  {"required": []string{"image", "commands"}},
		"RunSpec.executor":         executor,
		"RunSpec.commands":         {"minItems": 1, "items": Schema{"minLength": 1}},
		"RunSpec.env":              {"propertyNames": pattern(pipeline.EnvName.String())},
		"PodResources.requests":    quantities,
		"PodResources.limits":      quantities,
		"PodSettings.nodeSelector": {"propertyNames": pattern(pipeline.LabelKey.String())},
		"Toleration.operator":      enum("Equal", "Exists"),
		"Toleration.effect":        enum("", "NoSchedule", "PreferNoSchedule", "NoExecute"),
		"ScanSpec.failOn":          items(enum(pipeline.Severities...)),
		"CanarySpec.promotion":     enum("auto", "manual"),
		"Notify.format":            enum("json", "slack"),
		"RouterSpec":               {"minProperties": 1, "maxProperties": 1},
		"Step.weight":              {"minimum": 1, "maximum": 100},
		"AnalysisSpec.confidence":  {"minimum": 0.5, "maximum": 0.9999},
		"Metric.builtin":           enum(pipeline.Builtins...),
		"Metric.compare":           enum("stable"),
	}
}

func engineHints() map[string]Schema {
	forges := slices.Sorted(slices.Values(engineconfig.Forges))
	return map[string]Schema{
		"Config":             {"required": []string{"apiVersion", "kind"}},
		"Config.apiVersion":  {"const": pipeline.APIVersion},
		"Config.kind":        {"const": engineconfig.Kind},
		"Repository":         {"required": []string{"name", "url", "forge"}},
		"Repository.name":    pattern(`^[a-z0-9][a-z0-9._-]{0,62}$`),
		"Repository.forge":   enum(forges...),
		"TokenConfig":        {"required": []string{"name", "role"}},
		"TokenConfig.role":   enum("viewer", "release-manager", "admin"),
		"TokenConfig.sha256": pattern(`^[0-9a-f]{64}$`),
	}
}
