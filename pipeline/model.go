package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

// APIVersion and Kind are the only header values a pipeline file may carry.
const (
	APIVersion = "slipway.dev/v1"
	Kind       = "Pipeline"
)

// Pipeline is one decoded, validated pipeline file.
type Pipeline struct {
	APIVersion  string            `yaml:"apiVersion"`
	Kind        string            `yaml:"kind"`
	Metadata    Metadata          `yaml:"metadata"`
	On          Triggers          `yaml:"on"`
	Concurrency *Concurrency      `yaml:"concurrency"`
	Env         map[string]string `yaml:"env"`
	Secrets     SecretRefs        `yaml:"secrets"`
	Stages      []Stage           `yaml:"stages"`

	// Untrusted marks a pipeline read from a repository (anyone who can
	// push wrote it): it may only name secrets the engine grants, and the
	// engine checks what it releases against the repository's bindings.
	Untrusted bool `yaml:"-"`

	// File is where the pipeline was read from; Source is its exact text,
	// kept so that a run can be resumed from what it started with.
	File   string `yaml:"-"`
	Source []byte `yaml:"-"`

	pos strictyaml.Positions // where each field stands in Source
}

// Problem is a problem with the field at path (stages[1].run.image), said
// as validation says it: FILE:LINE:COL: path: sentence. The engine's
// admission uses it, so a refusal points into the file as an invalid
// pipeline does.
func (p *Pipeline) Problem(path, format string, args ...any) string {
	at := p.pos.At(path)
	return (&Error{File: p.File, Line: at.Line, Col: at.Col, Path: path, Msg: fmt.Sprintf(format, args...)}).Error()
}

// Metadata names the pipeline. App defaults to Name and is what concurrency
// groups and releases are keyed by.
type Metadata struct {
	Name string `yaml:"name"`
	App  string `yaml:"app"`
}

// AppName is Metadata.App, or the pipeline's name when App is empty.
func (p *Pipeline) AppName() string {
	if p.Metadata.App != "" {
		return p.Metadata.App
	}
	return p.Metadata.Name
}

// Triggers says what starts a run. A pipeline with none is run by hand only.
type Triggers struct {
	Push     *PushTrigger `yaml:"push"`
	Schedule StringList   `yaml:"schedule"` // cron lines: 5 fields or @hourly-style descriptors
	Manual   *Manual      `yaml:"manual"`
}

// PushTrigger filters pushes. Each list is a set of globs (`**` crosses
// directories); an empty list matches everything of its kind. A push of a
// tag is matched against Tags only; a push of a branch against Branches.
type PushTrigger struct {
	Branches []string `yaml:"branches"`
	Tags     []string `yaml:"tags"`
	Paths    []string `yaml:"paths"`
}

// Manual declares the parameters a person may pass when starting a run.
type Manual struct {
	Parameters map[string]Parameter `yaml:"parameters"`
}

// Parameter is one input of a manual run.
type Parameter struct {
	Description string `yaml:"description"`
	Default     string `yaml:"default"`
	Required    bool   `yaml:"required"`
}

// Concurrency policies.
const (
	PolicyQueue          = "queue"           // runs of a group go one at a time, in order
	PolicyCancelPrevious = "cancel-previous" // a new run cancels queued and running ones of its group
)

// Concurrency puts runs into a group (a template over the run's data).
type Concurrency struct {
	Group  string `yaml:"group"`
	Policy string `yaml:"policy"`
}

// SecretRefs are the secrets a pipeline uses, by name. Written as a
// mapping ({NAME: {env: VAR}}) where the file's author may say where a
// value comes from (the operator's files, `slipway run`), or as a list of
// names ([NAME, …]) whose values the engine config grants — the only form
// a pipeline read from a repository may use.
type SecretRefs map[string]SecretRef

// UnmarshalStrictYAML accepts the mapping and the list form.
func (s *SecretRefs) UnmarshalStrictYAML(v *strictyaml.Value) {
	if v.IsMapping() {
		v.Decode((*map[string]SecretRef)(s))
		return
	}
	var names []string
	v.Decode(&names)
	*s = make(SecretRefs, len(names))
	for _, n := range names {
		if _, dup := (*s)[n]; dup {
			v.Failf("secret %q is listed twice", n)
		}
		(*s)[n] = SecretRef{Granted: true}
	}
}

// SecretRef says where a secret's value comes from. Values are never
// written in the pipeline file itself.
type SecretRef struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
	// Granted: the pipeline only names the secret; the engine config
	// grants its value (the list form of `secrets:`).
	Granted bool `yaml:"-"`
}

// UnmarshalStrictYAML refuses inline secret values with a sentence that
// says what to do instead.
func (s *SecretRef) UnmarshalStrictYAML(v *strictyaml.Value) {
	if v.IsScalar() {
		v.Failf("secrets are references, not values: write {env: VAR} or {file: PATH}, or list the names the engine grants (secrets: [NAME])")
		return
	}
	type plain SecretRef
	v.Decode((*plain)(s))
}

// Stage is one step of a pipeline: common settings plus exactly one kind.
type Stage struct {
	Name    string   `yaml:"name"`
	Timeout Duration `yaml:"timeout"`
	Retries int      `yaml:"retries"`
	When    *When    `yaml:"when"`

	Clone  *CloneSpec  `yaml:"clone"`
	Build  *BuildSpec  `yaml:"build"`
	Scan   *ScanSpec   `yaml:"scan"`
	Deploy *DeploySpec `yaml:"deploy"`
	Canary *CanarySpec `yaml:"canary"`
	Run    *RunSpec    `yaml:"run"`
	Fake   *FakeSpec   `yaml:"fake"`
}

// kinds is the one list of stage kinds: each with the Stage field that
// holds its settings. Kinds, Kind and Spec read it, and so do validation,
// the engine's registry (stages.Registry refuses other names) and the
// import-direction test (a kind's package is stages/<name>).
var kinds = []struct {
	name string
	spec func(*Stage) any // nil when the stage is not of this kind
}{
	{"build", func(s *Stage) any { return orNil(s.Build) }},
	{"canary", func(s *Stage) any { return orNil(s.Canary) }},
	{"clone", func(s *Stage) any { return orNil(s.Clone) }},
	{"deploy", func(s *Stage) any { return orNil(s.Deploy) }},
	{"fake", func(s *Stage) any { return orNil(s.Fake) }},
	{"run", func(s *Stage) any { return orNil(s.Run) }},
	{"scan", func(s *Stage) any { return orNil(s.Scan) }},
}

// Kinds lists the stage kinds a pipeline file may name, sorted.
var Kinds = func() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return names
}()

// orNil is p as an interface, nil (not a typed nil) when p is nil.
func orNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// Kind is the name of the stage's kind, or "" when none or several are set.
func (s *Stage) Kind() string {
	kind, spec := s.only()
	if spec == nil {
		return ""
	}
	return kind
}

// Spec is the kind-specific settings (a *CloneSpec, *BuildSpec, …), or nil
// when none or several are set.
func (s *Stage) Spec() any {
	_, spec := s.only()
	return spec
}

// only is the stage's one kind and its settings; spec is nil unless
// exactly one kind is set.
func (s *Stage) only() (kind string, spec any) {
	for _, k := range kinds {
		if sp := k.spec(s); sp != nil {
			if spec != nil {
				return "", nil
			}
			kind, spec = k.name, sp
		}
	}
	return kind, spec
}

// kindsSet lists the kinds set on the stage.
func (s *Stage) kindsSet() []string {
	var set []string
	for _, k := range kinds {
		if k.spec(s) != nil {
			set = append(set, k.name)
		}
	}
	return set
}

// UnknownFieldHint turns an unknown key of a stage into an unknown-kind error.
func (s *Stage) UnknownFieldHint(key string) string {
	msg := fmt.Sprintf("unknown stage kind or field %q (kinds: %s; fields: name, timeout, retries, when)",
		key, strings.Join(Kinds, ", "))
	if sug := strictyaml.Suggest(key, append([]string{"name", "timeout", "retries", "when"}, Kinds...)); sug != "" {
		msg += fmt.Sprintf("; did you mean %q?", sug)
	}
	return msg
}

// When limits a stage to some runs. Empty lists match everything.
type When struct {
	Branches []string `yaml:"branches"` // globs over the branch name
	Events   []string `yaml:"events"`   // push, tag, schedule, manual
}

// Events a run can be started by.
const (
	EventPush     = "push"
	EventTag      = "tag"
	EventSchedule = "schedule"
	EventManual   = "manual"
)

var events = []string{EventPush, EventTag, EventSchedule, EventManual}

// Duration is a time.Duration written as "90s", "5m", "1h30m".
type Duration time.Duration

// UnmarshalText parses a Go duration and refuses negative values.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: write it like 90s, 5m or 1h30m", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// String prints the duration the way it is written in files.
func (d Duration) String() string { return time.Duration(d).String() }

// StringList is a list of text that may also be written as one value.
type StringList []string

// UnmarshalStrictYAML accepts `x` as well as `[x, y]`.
func (l *StringList) UnmarshalStrictYAML(v *strictyaml.Value) {
	if v.IsScalar() {
		var s string
		v.Decode(&s)
		*l = StringList{s}
		return
	}
	v.Decode((*[]string)(l))
}
