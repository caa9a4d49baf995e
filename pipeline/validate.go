package pipeline

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipwayci/slipway/pipeline/strictyaml"
)

var (
	outputName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// MaxStageTimeout bounds `timeout`; MaxRetries bounds `retries`.
const (
	MaxStageTimeout = 24 * time.Hour
	MaxRetries      = 10
)

// validator collects semantic problems next to the decoding ones.
type validator struct {
	file      string
	pos       strictyaml.Positions
	errs      strictyaml.Errors
	decodeErr strictyaml.Errors // problems decoding found; never checked again
	untrusted bool              // the file was read from a repository
}

// failf records a problem at path, unless decoding already reported one
// there or below (a value that failed to decode is not checked again).
func (v *validator) failf(path, format string, args ...any) {
	for _, e := range v.decodeErr {
		if e.Path == path || strings.HasPrefix(e.Path, path+".") || strings.HasPrefix(e.Path, path+"[") {
			return
		}
	}
	p := v.pos.At(path)
	v.errs = append(v.errs, &strictyaml.Error{File: v.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) required(path, value string) bool {
	if value == "" {
		v.failf(path, "is required")
		return false
	}
	return true
}

func (v *validator) oneOf(path, value string, allowed []string) {
	if value != "" && !slices.Contains(allowed, value) {
		v.failf(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
}

func (v *validator) globs(path string, patterns []string) {
	for i, p := range patterns {
		if _, err := CompileGlob(p); err != nil {
			v.failf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

func (v *validator) pipeline(p *Pipeline) {
	if p.APIVersion != APIVersion {
		v.failf("apiVersion", "must be %q, found %q", APIVersion, p.APIVersion)
	}
	if p.Kind != Kind {
		v.failf("kind", "must be %q, found %q", Kind, p.Kind)
	}
	if v.required("metadata.name", p.Metadata.Name) && !PipelineName.MatchString(p.Metadata.Name) {
		v.failf("metadata.name", "%q must be lower-case letters, digits and '-', at most 63 characters", p.Metadata.Name)
	}
	if p.Metadata.App != "" && !PipelineName.MatchString(p.Metadata.App) {
		v.failf("metadata.app", "%q must be lower-case letters, digits and '-', at most 63 characters", p.Metadata.App)
	}
	v.triggers(&p.On)
	v.concurrency(p.Concurrency)
	for name := range p.Env {
		if !EnvName.MatchString(name) {
			v.failf(strictyaml.JoinKey("env", name), "%q is not a valid environment variable name", name)
		}
	}
	for name, ref := range p.Secrets {
		v.secret(strictyaml.JoinKey("secrets", name), name, ref)
	}
	v.stages(p)
}

func (v *validator) triggers(on *Triggers) {
	if on.Push != nil {
		v.globs("on.push.branches", on.Push.Branches)
		v.globs("on.push.tags", on.Push.Tags)
		v.globs("on.push.paths", on.Push.Paths)
	}
	for i, line := range on.Schedule {
		if _, err := cron.ParseStandard(line); err != nil {
			v.failf(fmt.Sprintf("on.schedule[%d]", i), "bad cron schedule %q: %v (5 fields, or @hourly, @daily, @every 1h…)", line, err)
		}
	}
	if on.Manual != nil {
		for name := range on.Manual.Parameters {
			if !outputName.MatchString(name) {
				v.failf(strictyaml.JoinKey("on.manual.parameters", name), "%q is not a valid parameter name (letters, digits, _)", name)
			}
		}
	}
}

func (v *validator) concurrency(c *Concurrency) {
	if c == nil {
		return
	}
	if v.required("concurrency.group", c.Group) {
		if err := checkTemplate(c.Group, nil, false); err != nil {
			v.failf("concurrency.group", "%v", err)
		}
	}
	v.oneOf("concurrency.policy", c.Policy, []string{PolicyQueue, PolicyCancelPrevious})
}

func (v *validator) secret(path, name string, ref SecretRef) {
	if !EnvName.MatchString(name) {
		v.failf(path, "%q is not a valid secret name (letters, digits, _)", name)
	}
	switch {
	case ref.Granted:
	case v.untrusted:
		v.failf(path, "a pipeline read from a repository may not say where a secret comes from; "+
			"list its name (secrets: [%s]) and have the engine config grant it to this repository", name)
	case ref.Env == "" && ref.File == "":
		v.failf(path, "says neither env nor file; write {env: VAR} or {file: PATH}, or list the names the engine grants (secrets: [NAME])")
	case ref.Env != "" && ref.File != "":
		v.failf(path, "says both env and file; choose one")
	case ref.Env != "" && !EnvName.MatchString(ref.Env):
		v.failf(path+".env", "%q is not a valid environment variable name", ref.Env)
	}
}

func (v *validator) stages(p *Pipeline) {
	if len(p.Stages) == 0 {
		v.failf("stages", "a pipeline needs at least one stage")
		return
	}
	seen := map[string]int{}
	var earlier []string
	for i := range p.Stages {
		s := &p.Stages[i]
		path := fmt.Sprintf("stages[%d]", i)
		if v.required(path+".name", s.Name) {
			if !StageName.MatchString(s.Name) {
				v.failf(path+".name", "%q must start with a lower-case letter and hold only a-z, 0-9, '_' and '-'", s.Name)
			} else if first, dup := seen[s.Name]; dup {
				v.failf(path+".name", "duplicate stage name %q (first used by stages[%d])", s.Name, first)
			}
			seen[s.Name] = i
		}
		v.stage(p, path, s, earlier)
		earlier = append(earlier, s.Name)
	}
}

func (v *validator) stage(p *Pipeline, path string, s *Stage, earlier []string) {
	if time.Duration(s.Timeout) > MaxStageTimeout {
		v.failf(path+".timeout", "%s is longer than the %s limit", s.Timeout, MaxStageTimeout)
	}
	if s.Retries < 0 || s.Retries > MaxRetries {
		v.failf(path+".retries", "must be between 0 and %d, found %d", MaxRetries, s.Retries)
	}
	if s.When != nil {
		v.globs(path+".when.branches", s.When.Branches)
		for i, e := range s.When.Events {
			v.oneOf(fmt.Sprintf("%s.when.events[%d]", path, i), e, events)
		}
	}
	switch kinds := s.kindsSet(); len(kinds) {
	case 0:
		v.failf(path, "stage has no kind; add one of %s", strings.Join(Kinds, ", "))
		return
	case 1:
	default:
		v.failf(path, "stage sets several kinds (%s); a stage has exactly one", strings.Join(kinds, ", "))
		return
	}
	kpath := path + "." + s.Kind()
	v.templates(kpath, s.Spec(), earlier)
	switch s.Kind() {
	case "clone":
		v.clone(p, kpath, s.Clone)
	case "build":
		v.build(p, kpath, s.Build)
	case "scan":
		for i, sev := range s.Scan.FailOn {
			v.oneOf(fmt.Sprintf("%s.failOn[%d]", kpath, i), sev, Severities)
		}
		v.repoPath(kpath+".ignoreFile", s.Scan.IgnoreFile)
		v.auth(p, kpath+".auth", s.Scan.Auth)
	case "deploy":
		v.deploy(p, kpath, s.Deploy)
	case "canary":
		v.canary(p, kpath, s.Canary)
	case "run":
		v.run(p, kpath, s.Run)
	case "fake":
		v.fake(kpath, s.Fake)
	}
}

// templates checks every template field of a stage's settings.
func (v *validator) templates(path string, spec any, earlier []string) {
	src := reflect.ValueOf(spec)
	sink := reflect.New(src.Elem().Type()).Elem()
	copyRendered(sink, src.Elem(), path, false, func(field, text string, late bool) string {
		if err := checkTemplate(text, earlier, late); err != nil {
			v.failf(field, "%v", err)
		}
		return text
	})
}
