package triggers

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
)

// allows reports whether the grant covers a run of ref started by event.
func allows(g *engineconfig.SecretGrant, ref, event string) bool {
	return (len(g.Events) == 0 || slices.Contains(g.Events, event)) && pipeline.MatchRef(g.Branches, g.Tags, ref)
}

// covers reports whether the binding lets a stage write path of repo.
func covers(g engineconfig.GitOpsPath, repo, p string) bool {
	if NormalizeRepoURL(g.Repo) != NormalizeRepoURL(repo) {
		return false
	}
	want, got := path.Clean(g.Path), path.Clean(p)
	return want == "." || got == want || strings.HasPrefix(got, want+"/")
}

// Admit decides whether the engine runs pipeline p for trig. It returns
// "" to run it, or why not, in a sentence for the run and the delivery.
// Every pipeline may name only secrets granted to the repository for the
// run's ref and event. A pipeline read from the repository (untrusted) may
// also use only the apps bound to the repository, write only their GitOps
// paths, sync only their Argo CD applications and clone only the
// repository itself (or what cloneFrom lists) — all written literally, so
// the check cannot be dodged by a template.
func (r *Repo) Admit(p *pipeline.Pipeline, trig store.Trigger) string {
	var why []string
	fail := func(path, format string, args ...any) { why = append(why, p.Problem(path, format, args...)) }
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		if !p.Secrets[name].Granted {
			continue
		}
		if _, err := r.grant(name, trig); err != nil {
			fail("secrets."+name, "%v", err)
		}
	}
	if p.Untrusted {
		if op := r.operatorPipeline(p.Metadata.Name); op != "" {
			fail("metadata.name", "%s is the name of the operator's pipeline %s of repository %s; a pipeline read from the repository needs a name of its own", p.Metadata.Name, op, r.Config.Name)
		}
		r.bound(p, fail)
		r.placed(p, fail)
		r.Config.Limits.Check(p, fail)
	}
	return strings.Join(why, "; ")
}

// operatorPipeline is the file of the operator's pipeline of the
// repository named name, or "": its name, its runs' deduplication, its
// commit status and its schedules are not a pushed file's to take.
func (r *Repo) operatorPipeline(name string) string {
	for _, src := range r.Sources {
		if f, ok := src.(FileSource); ok && f.P != nil && f.P.Metadata.Name == name {
			return f.P.File
		}
	}
	return ""
}

// grant finds the grant of secret name for a run of trig.
func (r *Repo) grant(name string, trig store.Trigger) (*engineconfig.SecretGrant, error) {
	for i := range r.Config.Secrets {
		g := &r.Config.Secrets[i]
		if g.Name != name {
			continue
		}
		if !allows(g, trig.Ref, trig.Event) {
			return nil, fmt.Errorf("secret %s is not granted to repository %s for ref %q (%s)", name, r.Config.Name, trig.Ref, trig.Event)
		}
		return g, nil
	}
	return nil, fmt.Errorf("secret %s is not granted to repository %s", name, r.Config.Name)
}

// bound checks an untrusted pipeline's app, GitOps paths, Argo CD apps,
// clone sources and where its canaries connect against the repository's
// bindings, reporting through fail.
func (r *Repo) bound(p *pipeline.Pipeline, fail func(path, format string, args ...any)) {
	app := p.AppName()
	binding := r.app(app)
	if binding == nil {
		fail("metadata", "app %s is not bound to repository %s (repositories[].apps in the engine config)", app, r.Config.Name)
		return
	}
	literal := func(at, v string) bool {
		if strings.Contains(v, "{{") {
			fail(at, "must be written literally in a pipeline read from a repository, not as a template")
			return false
		}
		return true
	}
	for i, st := range p.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		var g *pipeline.GitOpsSpec
		var a *pipeline.ArgoCDSpec
		switch {
		case st.Deploy != nil:
			g, a, at = &st.Deploy.GitOps, &st.Deploy.ArgoCD, at+".deploy"
		case st.Canary != nil:
			g, a, at = &st.Canary.GitOps, &st.Canary.ArgoCD, at+".canary"
		case st.Clone != nil && st.Clone.Repo != "":
			if literal(at+".clone.repo", st.Clone.Repo) && !r.mayClone(st.Clone.Repo) {
				fail(at+".clone.repo", "repository %s may clone only itself or what cloneFrom lists, not %s", r.Config.Name, st.Clone.Repo)
			}
			continue
		default:
			continue
		}
		if literal(at+".gitops.repo", g.Repo) && literal(at+".gitops.path", g.Path) &&
			!slices.ContainsFunc(binding.GitOps, func(b engineconfig.GitOpsPath) bool { return covers(b, g.Repo, g.Path) }) {
			fail(at+".gitops", "app %s may not write %s in %s (not in its gitops bindings)", app, g.Path, g.Repo)
		}
		if literal(at+".argocd.app", a.App) && !slices.Contains(binding.ArgoCD, a.App) {
			fail(at+".argocd.app", "app %s may not sync Argo CD application %s (not in its argocd bindings)", app, a.App)
		}
		if literal(at+".argocd.server", a.Server) && a.Server != binding.ArgoCDServer {
			fail(at+".argocd.server", "app %s may sync only through %s, not %s (apps[].argocdServer in the engine config)", app, orNone(binding.ArgoCDServer), a.Server)
		}
		if (a.PlainText || a.Insecure) && !binding.ArgoCDInsecure {
			fail(at+".argocd", "app %s's Argo CD server is reached with TLS, verified; plainText and insecure are the engine config's to allow (apps[].argocdInsecure)", app)
		}
		if st.Canary != nil {
			connects(binding, at, st.Canary, literal, fail)
		}
	}
}

// connects checks where a canary makes the engine connect: its analysis's
// Prometheus and its notification URLs.
func connects(b *engineconfig.AppBinding, at string, c *pipeline.CanarySpec, literal func(at, v string) bool, fail func(path, format string, args ...any)) {
	if p := c.Analysis.Prometheus; p != "" && literal(at+".analysis.prometheus", p) && p != b.Prometheus {
		fail(at+".analysis.prometheus", "app %s may query only %s, not %s (apps[].prometheus in the engine config)", b.Name, orNone(b.Prometheus), p)
	}
	for i, n := range c.Notify {
		nat := fmt.Sprintf("%s.notify[%d].url", at, i)
		if n.URL == "" || !literal(nat, n.URL) {
			continue // a urlSecret's URL is the operator's: the secret is granted
		}
		if !slices.ContainsFunc(b.Notify, func(prefix string) bool { return urlUnder(n.URL, prefix) }) {
			fail(nat, "app %s may post only under %s, not to %s (apps[].notify in the engine config)", b.Name, orNone(strings.Join(b.Notify, ", ")), n.URL)
		}
	}
}

// urlUnder reports whether u is prefix or lies under it: the same scheme,
// host and port, and a path below prefix's (not merely starting with it).
func urlUnder(u, prefix string) bool {
	if u == prefix {
		return true
	}
	p := strings.TrimSuffix(prefix, "/")
	return strings.HasPrefix(u, p+"/") && strings.Count(p, "/") >= 2 // scheme://host at least
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// app is the binding of app name; a repository that binds no apps may use
// its own name as app, to release nothing.
func (r *Repo) app(name string) *engineconfig.AppBinding {
	for i := range r.Config.Apps {
		if r.Config.Apps[i].Name == name {
			return &r.Config.Apps[i]
		}
	}
	if len(r.Config.Apps) == 0 && name == r.Config.Name {
		return &engineconfig.AppBinding{Name: name}
	}
	return nil
}

func (r *Repo) mayClone(url string) bool {
	if pipeline.CheckRemoteForm(url) != nil {
		return false
	}
	return sameRemote(url, r.Config.URL) || slices.ContainsFunc(r.Config.CloneFrom, func(u string) bool { return sameRemote(u, url) })
}

// sameRemote reports whether a and b are one repository reached the same
// way: one scheme, host and port (where a clone's credentials go, so an
// http:// spelling of an https:// repository is another) and one path.
func sameRemote(a, b string) bool {
	ea, errA := transport.NewEndpoint(a)
	eb, errB := transport.NewEndpoint(b)
	if errA != nil || errB != nil {
		return false
	}
	return strings.EqualFold(ea.Protocol, eb.Protocol) && ea.Port == eb.Port && NormalizeRepoURL(a) == NormalizeRepoURL(b)
}

// Grants gives runs their secrets as the engine config grants them: a
// secret only named is read from the grant of the run's repository, checked
// again for the run's ref and event; {env}/{file} references are read only
// for pipelines the operator wrote.
type Grants struct {
	Repos     []*Repo
	LookupEnv func(string) (string, bool)
}

// Resolve implements runner.Secrets.
func (g *Grants) Resolve(ctx context.Context, run *store.Run, p *pipeline.Pipeline) (map[string]string, error) {
	return runner.LocalSecrets{LookupEnv: g.LookupEnv, Grant: g.grant}.Resolve(ctx, run, p)
}

func (g *Grants) grant(run *store.Run, name string) (pipeline.SecretRef, error) {
	r := g.repoOf(run)
	if r == nil {
		return pipeline.SecretRef{}, fmt.Errorf("secret %s is not granted: run %d has no repository of the engine config", name, run.ID)
	}
	grant, err := r.grant(name, run.Trigger)
	if err != nil {
		return pipeline.SecretRef{}, err
	}
	return grant.From, nil
}

// Admit implements runner.Admission: the runner asks it before each stage
// starts, and the run's repository admits p as the engine config says
// (Repo.Admit). A pipeline read from a repository the engine config does
// not name is refused.
func (g *Grants) Admit(_ context.Context, run *store.Run, p *pipeline.Pipeline) string {
	if r := g.repoOf(run); r != nil {
		return r.Admit(p, run.Trigger)
	}
	if p.Untrusted {
		return fmt.Sprintf("run %d read its pipeline from repository %q, which is not in the engine config", run.ID, run.Trigger.Repo)
	}
	return ""
}

// Executor implements runner.Placement: the build and run stages of a
// pipeline read from a repository run where its Repo.Executor says.
func (g *Grants) Executor(run *store.Run) string {
	if r := g.repoOf(run); r != nil && run.Untrusted {
		return r.Executor()
	}
	return ""
}

// MayFetch implements runner.Fetching: a pipeline read from a repository
// fetches (as a submodule) only what it may clone, the repository itself
// or what cloneFrom lists; other pipelines fetch anything.
func (g *Grants) MayFetch(run *store.Run, url string) bool {
	if !run.Untrusted {
		return true
	}
	r := g.repoOf(run)
	return r != nil && r.mayClone(url)
}

// RunLogBytes implements runner.LogBudget: a pipeline read from a
// repository keeps at most its repository's maxRunLog of logs per run.
func (g *Grants) RunLogBytes(run *store.Run) int64 {
	if r := g.repoOf(run); r != nil && run.Untrusted {
		return r.Config.Limits.RunLogBytes()
	}
	return 0
}

// repoOf is the repository of the engine config that run belongs to, or nil.
func (g *Grants) repoOf(run *store.Run) *Repo {
	if run.Trigger.Repo == "" {
		return nil
	}
	for _, r := range g.Repos {
		if r.matches([]string{run.Trigger.Repo}) {
			return r
		}
	}
	return nil
}

var (
	_ runner.Secrets   = (*Grants)(nil)
	_ runner.Admission = (*Grants)(nil)
	_ runner.Placement = (*Grants)(nil)
	_ runner.Fetching  = (*Grants)(nil)
	_ runner.LogBudget = (*Grants)(nil)
)

// Request is the run request for p started by trig, keyed by key: refused,
// with the reason Admit gives, when the repository's grants do not cover
// it; a pipeline read from the repository runs in one of its slots
// (repositories[].limits.maxRunning).
func (r *Repo) Request(p *pipeline.Pipeline, trig store.Trigger, key string) runner.Request {
	req := runner.Request{Pipeline: p, Trigger: trig, DedupKey: key, Refused: r.Admit(p, trig)}
	if p.Untrusted { // the repository's runs share its slots
		req.Slot, req.Slots = store.RepositorySlot(r.Config.Name), r.Config.Limits.OrDefaults().MaxRunning
	}
	return req
}
