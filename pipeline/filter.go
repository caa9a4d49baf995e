package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// MatchPush decides whether a push of ref (refs/heads/… or refs/tags/…)
// that changed paths starts this pipeline. When it does not, reason says
// why in words fit for the run history. A nil paths means the changed
// paths are unknown, and a path filter then lets the push through.
func (p *Pipeline) MatchPush(ref string, paths []string) (ok bool, reason string) {
	push := p.On.Push
	if push == nil {
		return false, "pipeline has no push trigger"
	}
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		tag := strings.TrimPrefix(ref, "refs/tags/")
		if len(push.Tags) == 0 {
			return false, fmt.Sprintf("tag %s: the push trigger lists no tags", tag)
		}
		if !matchAny(push.Tags, tag) {
			return false, fmt.Sprintf("tag %s matches none of %v", tag, push.Tags)
		}
		return true, ""
	case strings.HasPrefix(ref, "refs/heads/"):
		branch := strings.TrimPrefix(ref, "refs/heads/")
		if len(push.Branches) == 0 && len(push.Tags) > 0 {
			return false, fmt.Sprintf("branch %s: the push trigger lists tags only", branch)
		}
		if !matchAny(push.Branches, branch) {
			return false, fmt.Sprintf("branch %s matches none of %v", branch, push.Branches)
		}
	default:
		return false, fmt.Sprintf("ref %s is neither a branch nor a tag", ref)
	}
	if paths == nil || len(push.Paths) == 0 {
		return true, ""
	}
	for _, changed := range paths {
		if matchAny(push.Paths, changed) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("none of the %d changed paths matches %v", len(paths), push.Paths)
}

// Runs reports whether the stage's `when` lets it run for a run started by
// event on branch (branch is empty for tags and for runs without a branch).
func (s *Stage) Runs(event, branch string) bool {
	if s.When == nil {
		return true
	}
	if len(s.When.Events) > 0 && !slices.Contains(s.When.Events, event) {
		return false
	}
	if len(s.When.Branches) > 0 && (branch == "" || !matchAny(s.When.Branches, branch)) {
		return false
	}
	return true
}

// ManualParams checks the parameters given for a manual run against
// on.manual.parameters and fills in defaults.
func (p *Pipeline) ManualParams(given map[string]string) (map[string]string, error) {
	declared := map[string]Parameter{}
	if p.On.Manual != nil {
		declared = p.On.Manual.Parameters
	}
	out := map[string]string{}
	for name, v := range given {
		if _, ok := declared[name]; !ok {
			return nil, fmt.Errorf("parameter %s: the pipeline declares no such parameter under on.manual.parameters", name)
		}
		out[name] = v
	}
	for name, d := range declared {
		if _, set := out[name]; set {
			continue
		}
		if d.Required {
			return nil, fmt.Errorf("parameter %s is required (%s)", name, d.Description)
		}
		out[name] = d.Default
	}
	return out, nil
}

// MatchRef reports whether ref is a branch matching one of branches or a
// tag matching one of tags. With both lists empty every ref matches; with
// one empty, no ref of that kind does.
func MatchRef(branches, tags []string, ref string) bool {
	if len(branches) == 0 && len(tags) == 0 {
		return true
	}
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return len(branches) > 0 && matchAny(branches, b)
	}
	if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return len(tags) > 0 && matchAny(tags, t)
	}
	return false
}
