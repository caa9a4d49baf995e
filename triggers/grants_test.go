package triggers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
)

var grantRepo = &Repo{Config: engineconfig.Repository{
	Name: "shop", URL: "https://git.example.com/shop/order.git",
	Secrets: []engineconfig.SecretGrant{
		{Name: "REGISTRY", From: pipeline.SecretRef{Env: "REG"}},
		{Name: "DEPLOY", From: pipeline.SecretRef{Env: "DEP"}, Branches: []string{"main"}, Tags: []string{"v*"}, Events: []string{"push", "tag"}},
	},
	Apps: []engineconfig.AppBinding{{Name: "order", ArgoCD: []string{"order"}, ArgoCDServer: "argocd:443",
		Prometheus: "http://prometheus:9090", Notify: []string{"https://hooks.example.com/releases"},
		GitOps: []engineconfig.GitOpsPath{{Repo: "https://git.example.com/platform/gitops.git", Path: "apps/order"}}}},
	CloneFrom: []string{"https://git.example.com/shop/shared.git"},
}}

func untrusted(t *testing.T, body string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.ParseUntrusted("repo.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: order}\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Admit lets a repository's pipeline use what the engine config grants it
// and nothing else, saying what was refused.
func TestAdmitChecksGrantsAndBindings(t *testing.T) {
	t.Parallel()
	push := func(ref string) store.Trigger { return store.Trigger{Event: "push", Ref: ref} }
	gitops := "https://git.example.com/platform/gitops.git"
	tests := []struct {
		name string
		body string
		trig store.Trigger
		want string // "" admits
	}{
		{"granted everywhere", "secrets: [REGISTRY]\nstages: [{name: a, fake: {}}]", push("refs/heads/feature"), ""},
		{"deploy token on main", "secrets: [DEPLOY]\nstages: [{name: a, fake: {}}]", push("refs/heads/main"), ""},
		{"deploy token on a tag", "secrets: [DEPLOY]\nstages: [{name: a, fake: {}}]", store.Trigger{Event: "tag", Ref: "refs/tags/v1.2"}, ""},
		{"deploy token on a branch", "secrets: [DEPLOY]\nstages: [{name: a, fake: {}}]", push("refs/heads/feature"),
			`secret DEPLOY is not granted to repository shop for ref "refs/heads/feature" (push)`},
		{"deploy token by hand on main", "secrets: [DEPLOY]\nstages: [{name: a, fake: {}}]", store.Trigger{Event: "manual", Ref: "refs/heads/main"},
			`not granted to repository shop for ref "refs/heads/main" (manual)`},
		{"a secret nobody granted", "secrets: [ADMIN]\nstages: [{name: a, fake: {}}]", push("refs/heads/main"), "secret ADMIN is not granted to repository shop"},

		{"another app's app", "stages: [{name: a, fake: {}}]", push("refs/heads/main"), ""},
		{"clone itself", "stages: [{name: c, clone: {repo: \"https://git.example.com/shop/order\"}}]", push("refs/heads/main"), ""},
		{"clone the allowed one", "stages: [{name: c, clone: {repo: \"https://git.example.com/shop/shared.git\"}}]", push("refs/heads/main"), ""},
		{"clone another", "stages: [{name: c, clone: {repo: \"https://git.example.com/payments/secret.git\"}}]", push("refs/heads/main"),
			"may clone only itself or what cloneFrom lists"},
		{"clone by template", "stages: [{name: c, clone: {repo: \"{{ .Params.repo }}\"}}]", push("refs/heads/main"), "must be written literally"},
		{"clone itself over plain http", "stages: [{name: c, clone: {repo: \"http://git.example.com/shop/order.git\"}}]", push("refs/heads/main"),
			"may clone only itself or what cloneFrom lists"},
		{"clone itself on another port", "stages: [{name: c, clone: {repo: \"https://git.example.com:8443/shop/order.git\"}}]", push("refs/heads/main"),
			"may clone only itself or what cloneFrom lists"},
	}
	// git reads "[evil:2222]:@git.example.com:shop/order" as host evil,
	// port 2222; go-git as a user of git.example.com: refused when read.
	if _, err := pipeline.ParseUntrusted("repo.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: order}\n"+
		"stages: [{name: c, clone: {repo: \"[evil.example.net:2222]:@git.example.com:shop/order\", engine: git}}]")); err == nil ||
		!strings.Contains(err.Error(), "is neither a URL (https://, ssh://) nor a plain user@host:path") {
		t.Errorf("a bracketed scp address: %v", err)
	}
	if grantRepo.mayClone("[evil.example.net:2222]:@git.example.com:shop/order") {
		t.Error("mayClone admits a bracketed scp address")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := grantRepo.Admit(untrusted(t, tt.body), tt.trig)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Admit = %q, want %q", got, tt.want)
			}
		})
	}
	deploy := func(repo, path, app string) string {
		return grantRepo.Admit(untrusted(t,
			"stages:\n  - name: deploy\n    deploy:\n      image: reg/order@sha256:"+strings.Repeat("0", 64)+
				"\n      gitops: {repo: \""+repo+"\", path: \""+path+"\", image: {kustomize: order}}\n      argocd: {app: \""+app+"\", server: \"argocd:443\"}\n"), push("refs/heads/main"))
	}
	for _, tt := range []struct{ repo, path, app, want string }{
		{gitops, "apps/order", "order", ""},
		{gitops + "/", "apps/order/overlays/prod", "order", ""},
		{gitops, "apps/orders", "order", "may not write apps/orders"},
		{gitops, "apps/payments", "order", "may not write apps/payments"},
		{"https://evil.example.com/platform/gitops.git", "apps/order", "order", "may not write"},
		{gitops, "apps/order", "payments", "may not sync Argo CD application payments"},
		{gitops, "{{ .Params.path }}", "order", "gitops.path: must be written literally"},
	} {
		if got := deploy(tt.repo, tt.path, tt.app); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("deploy to %s %s app %s: %q, want %q", tt.repo, tt.path, tt.app, got, tt.want)
		}
	}
	if got := deploy(gitops, "apps/order", "order"); got != "" {
		t.Errorf("the bound deploy: %q", got)
	}
	if got := grantRepo.Admit(untrusted(t, strings.ReplaceAll(deployBody(gitops), "argocd:443", "evil.example:443")), push("refs/heads/main")); !strings.Contains(got,
		"argocd.server: app order may sync only through argocd:443, not evil.example:443") {
		t.Errorf("another Argo CD server: %q", got)
	}
	for _, setting := range []string{"plainText: true", "insecure: true"} {
		body := strings.ReplaceAll(deployBody(gitops), `server: "argocd:443"`, `server: "argocd:443", `+setting)
		if got := grantRepo.Admit(untrusted(t, body), push("refs/heads/main")); !strings.Contains(got, "plainText and insecure are the engine config's to allow") {
			t.Errorf("argocd %s: %q", setting, got)
		}
	}
	for _, tt := range []struct{ prometheus, notify, want string }{
		{"", "", ""},
		{`"http://prometheus:9090"`, "", ""},
		{`"http://127.0.0.1:9"`, "", "analysis.prometheus: app order may query only http://prometheus:9090, not http://127.0.0.1:9"},
		{`"{{ .Params.p }}"`, "", "analysis.prometheus: must be written literally"},
		{"", `[{url: "https://hooks.example.com/releases/order"}]`, ""},
		{"", `[{urlSecret: DEPLOY}]`, ""},
		{"", `[{url: "https://hooks.example.com/releasesX"}]`, "notify[0].url: app order may post only under https://hooks.example.com/releases"},
		{"", `[{url: "https://hooks.example.com/releases@evil.example/"}]`, "may post only under"},
		{"", `[{url: "http://169.254.169.254/latest"}]`, "may post only under"},
	} {
		got := grantRepo.Admit(untrusted(t, canaryBody(gitops, tt.prometheus, tt.notify)), push("refs/heads/main"))
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("canary with prometheus %s, notify %s: %q, want %q", tt.prometheus, tt.notify, got, tt.want)
		}
	}
	other := untrusted(t, "stages: [{name: a, fake: {}}]")
	other.Metadata.App = "payments"
	if got := grantRepo.Admit(other, push("refs/heads/main")); !strings.Contains(got, "app payments is not bound to repository shop") {
		t.Errorf("another app: %q", got)
	}
}

// Grants reads a granted secret for the run's repository, ref and event
// only, and never reads a source an untrusted run names.
func TestGrantsResolve(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REG": "reg-value", "DEP": "dep-value", "HOME": "/root"}
	g := &Grants{Repos: []*Repo{grantRepo}, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	run := func(ref string, untrusted bool) *store.Run {
		return &store.Run{ID: 1, Untrusted: untrusted, Trigger: store.Trigger{Event: "push", Repo: grantRepo.Config.URL, Ref: ref}}
	}
	p := &pipeline.Pipeline{Secrets: pipeline.SecretRefs{"REGISTRY": {Granted: true}, "DEPLOY": {Granted: true}}}
	got, err := g.Resolve(context.Background(), run("refs/heads/main", true), p)
	if err != nil || got["REGISTRY"] != "reg-value" || got["DEPLOY"] != "dep-value" {
		t.Errorf("on main: %v %v", got, err)
	}
	if _, err := g.Resolve(context.Background(), run("refs/heads/dev", true), p); err == nil || !strings.Contains(err.Error(), "DEPLOY is not granted") {
		t.Errorf("on dev: %v", err)
	}
	sourced := &pipeline.Pipeline{Secrets: pipeline.SecretRefs{"X": {Env: "HOME"}}}
	if _, err := g.Resolve(context.Background(), run("refs/heads/main", true), sourced); err == nil || !strings.Contains(err.Error(), "may not say where") {
		t.Errorf("untrusted env reference: %v", err)
	}
	if got, err := g.Resolve(context.Background(), run("refs/heads/main", false), sourced); err != nil || got["X"] != "/root" {
		t.Errorf("the operator's env reference: %v %v", got, err)
	}
	stranger := &store.Run{ID: 2, Trigger: store.Trigger{Event: "push", Repo: "https://git.example.com/other.git", Ref: "refs/heads/main"}}
	if _, err := g.Resolve(context.Background(), stranger, p); err == nil || !strings.Contains(err.Error(), "no repository of the engine config") {
		t.Errorf("a run of another repository: %v", err)
	}
}

// Grants admit a run where its stages start as Repo.Admit does at intake:
// by the run's own repository, for its ref and event; a pipeline read from
// a repository the engine config does not name is refused.
func TestGrantsAdmitEachStage(t *testing.T) {
	t.Parallel()
	g := &Grants{Repos: []*Repo{grantRepo}}
	run := func(repo, ref string) *store.Run {
		return &store.Run{ID: 7, Untrusted: true, Trigger: store.Trigger{Event: "push", Repo: repo, Ref: ref}}
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name, repo, ref, body, want string
	}{
		{"bound and granted", grantRepo.Config.URL, "refs/heads/main", "secrets: [DEPLOY]\nstages:\n  - {name: c, clone: {}}\n", ""},
		{"a secret not granted for the ref", grantRepo.Config.URL, "refs/heads/dev", "secrets: [DEPLOY]\nstages:\n  - {name: c, clone: {}}\n",
			`secret DEPLOY is not granted to repository shop for ref "refs/heads/dev" (push)`},
		{"a templated clone source", grantRepo.Config.URL, "refs/heads/dev", "secrets: [REGISTRY]\nstages:\n  - {name: c, clone: {repo: 'http://127.0.0.1:9/{{ .Secrets.REGISTRY }}.git'}}\n",
			"stages[0].clone.repo: must be written literally"},
		{"a clone source outside cloneFrom", grantRepo.Config.URL, "refs/heads/dev", "stages:\n  - {name: c, clone: {repo: 'http://127.0.0.1:9/x.git'}}\n",
			"may clone only itself or what cloneFrom lists"},
		{"a repository the engine config does not name", "https://git.example.com/other.git", "refs/heads/main", "stages:\n  - {name: c, clone: {}}\n",
			`run 7 read its pipeline from repository "https://git.example.com/other.git", which is not in the engine config`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := g.Admit(ctx, run(tt.repo, tt.ref), untrusted(t, tt.body))
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("Admit = %q, want %q", got, tt.want)
			}
		})
	}
}

// deployBody is a deploy of app order to gitops, through argocd:443.
func deployBody(gitops string) string {
	return "stages:\n  - name: deploy\n    deploy:\n      image: reg/order@sha256:" + strings.Repeat("0", 64) +
		"\n      gitops: {repo: \"" + gitops + "\", path: apps/order, image: {kustomize: order}}\n      argocd: {app: order, server: \"argocd:443\"}\n"
}

// canaryBody is a canary of app order, with its analysis's prometheus and
// its notify list when not "" (YAML flow values).
func canaryBody(gitops, prometheus, notify string) string {
	extra := ""
	if prometheus != "" {
		extra += ", prometheus: " + prometheus
	}
	if notify != "" {
		notify = "\n      notify: " + notify
	}
	return "secrets: [DEPLOY]\nstages:\n  - name: canary\n    canary:\n      image: reg/order@sha256:" + strings.Repeat("0", 64) +
		"\n      gitops: {repo: \"" + gitops + "\", path: apps/order, image: {kustomize: order-canary}}" +
		"\n      stable: {kustomize: order}\n      argocd: {app: order, server: \"argocd:443\"}" +
		"\n      workloads: {stable: order, canary: order-canary}\n      router: {istio: {virtualService: order, stableSubset: stable, canarySubset: canary}}" +
		"\n      steps: [10, 100]\n      analysis: {metrics: [{name: sr, builtin: request-success-rate, min: 99}]" + extra + "}" + notify + "\n"
}

// A repository's limits (the engine config's repositories[].limits) are
// checked where each stage starts too: what one repository may ask of the
// engine, another may not.
func TestAdmitHoldsARepositoryToItsLimits(t *testing.T) {
	t.Parallel()
	var body strings.Builder
	body.WriteString("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\nstages:\n")
	for i := range 35 {
		fmt.Fprintf(&body, "  - {name: s%d, fake: {}}\n", i)
	}
	raised := pipeline.Limits{MaxStages: 40}
	p, err := pipeline.ParseUntrustedWithin("repo.yaml", []byte(body.String()), raised)
	if err != nil {
		t.Fatalf("35 stages within a limit of 40: %v", err)
	}
	if _, err := pipeline.ParseUntrusted("repo.yaml", []byte(body.String())); err == nil || !strings.Contains(err.Error(), "35 stages; a pipeline read from a repository may have at most 30") {
		t.Errorf("35 stages within the default limits: %v", err)
	}
	trig := store.Trigger{Event: "push", Ref: "refs/heads/main"}
	big := &Repo{Config: engineconfig.Repository{Name: "shop", Limits: raised}}
	small := &Repo{Config: engineconfig.Repository{Name: "shop"}}
	if got := big.Admit(p, trig); got != "" {
		t.Errorf("the repository allowed 40 stages refused 35: %q", got)
	}
	if got := small.Admit(p, trig); !strings.Contains(got, "stages: 35 stages; a pipeline read from a repository may have at most 30") {
		t.Errorf("a repository of default limits admitted 35 stages: %q", got)
	}
	// Its runs' logs: the repository's maxRunLog (default 128Mi), for
	// pipelines read from it.
	big.Config.URL, big.Config.Limits.MaxRunLog = "https://git.example.com/shop.git", "1Mi"
	g := &Grants{Repos: []*Repo{big}}
	for _, tt := range []struct {
		untrusted bool
		want      int64
	}{{true, 1 << 20}, {false, 0}} {
		if got := g.RunLogBytes(&store.Run{Untrusted: tt.untrusted, Trigger: store.Trigger{Repo: big.Config.URL}}); got != tt.want {
			t.Errorf("RunLogBytes(untrusted %v) = %d, want %d", tt.untrusted, got, tt.want)
		}
	}
	if got := (pipeline.Limits{}).RunLogBytes(); got != 128<<20 {
		t.Errorf("the default maxRunLog is %d bytes", got)
	}
	// Its pushed pipelines' runs share its slots (maxRunning, default 2).
	for _, tt := range []struct {
		repo  *Repo
		p     *pipeline.Pipeline
		slots int
	}{{small, p, 2}, {&Repo{Config: engineconfig.Repository{Name: "shop", Limits: pipeline.Limits{MaxRunning: 5}}}, p, 5}} {
		if req := tt.repo.Request(tt.p, trig, "k"); req.Slot != "repository shop" || req.Slots != tt.slots {
			t.Errorf("request slot %q of %d, want repository shop of %d", req.Slot, req.Slots, tt.slots)
		}
	}
	operators, err := pipeline.Parse("ops.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: ops}\nstages: [{name: a, fake: {}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if req := small.Request(operators, trig, "k"); req.Slot != "" {
		t.Errorf("the operator's pipeline takes slot %q", req.Slot)
	}
}

// A pipeline read from a repository may not take the name of the
// operator's pipeline of that repository: its runs would share the
// operator's deduplication keys and commit status context.
func TestAPushedPipelineCannotTakeTheOperatorsName(t *testing.T) {
	t.Parallel()
	operator, err := pipeline.Parse("/etc/slipway/order.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: order}\nstages: [{name: a, fake: {}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	repo := &Repo{Config: grantRepo.Config, Sources: []Source{FileSource{P: operator}, RepoFileSource{URL: grantRepo.Config.URL, Path: ".slipway.yaml"}}}
	trig := store.Trigger{Event: "push", Ref: "refs/heads/main"}
	if got := repo.Admit(untrusted(t, "stages: [{name: a, fake: {}}]"), trig); !strings.Contains(got,
		"metadata.name: order is the name of the operator's pipeline /etc/slipway/order.yaml of repository shop") {
		t.Errorf("a pushed pipeline named like the operator's: %q", got)
	}
	if got := repo.Admit(operator, trig); got != "" {
		t.Errorf("the operator's own pipeline: %q", got)
	}
	other := untrusted(t, "stages: [{name: a, fake: {}}]")
	other.Metadata.Name, other.Metadata.App = "order-checks", "order"
	if got := repo.Admit(other, trig); got != "" {
		t.Errorf("a pushed pipeline of its own name: %q", got)
	}
}

// A pipeline read from a repository places its Pods only in a node pool
// the engine config gives the repository: no control-plane selector, no
// toleration of every taint; without pools, nowhere but the default.
func TestPodsGoOnlyToTheRepositorysNodePools(t *testing.T) {
	t.Parallel()
	repo := &Repo{Config: grantRepo.Config}
	repo.Config.NodePools = []engineconfig.NodePool{{Name: "builders", NodeSelector: map[string]string{"pool": "builders"},
		Tolerations: []pipeline.Toleration{{Key: "builds", Operator: "Exists", Effect: "NoSchedule"}}}}
	repo.Config.Images = []string{"docker.io/reg"}
	trig := store.Trigger{Event: "push", Ref: "refs/heads/main"}
	build := func(pod string) *pipeline.Pipeline {
		return untrusted(t, "stages:\n  - {name: b, build: {image: reg/order, executor: kubernetes, pod: "+pod+"}}\n")
	}
	for _, tt := range []struct{ pod, want string }{
		{"{}", ""},
		{"{nodeSelector: {pool: builders}, tolerations: [{key: builds, operator: Exists, effect: NoSchedule}]}", ""},
		{"{nodeSelector: {node-role.kubernetes.io/control-plane: \"\"}}", "stages[0].build.pod: its nodeSelector and tolerations are not those of a node pool of repository shop"},
		{"{tolerations: [{operator: Exists}]}", "not those of a node pool"},
		{"{nodeSelector: {pool: builders}}", "not those of a node pool"},
	} {
		if got := repo.Admit(build(tt.pod), trig); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("pod %s: %q, want %q", tt.pod, got, tt.want)
		}
	}
}

// On an engine with a cluster a repository's pushed build and run stages
// are Pods: local is refused (with where it is written) unless the engine
// config gives the repository the local sandbox; a run image comes from
// the repository's prefixes, a service account (and its token) from its
// list.
func TestPushedCodeRunsWhereTheRepositoryIsAllowed(t *testing.T) {
	t.Parallel()
	repo := &Repo{Config: grantRepo.Config, Cluster: true}
	repo.Config.Images = []string{"registry.example.com/ci", "127.0.0.1:5000", "docker.io/library"}
	repo.Config.ServiceAccounts = []string{"order-pusher"}
	trig := store.Trigger{Event: "push", Ref: "refs/heads/main"}
	run := func(settings string) *pipeline.Pipeline {
		return untrusted(t, "stages:\n  - name: test\n    run: {commands: [go test ./...], "+settings+"}\n")
	}
	for _, tt := range []struct{ settings, want string }{
		{"image: registry.example.com/ci/golang:1.27", ""},
		{"image: registry.example.com/ci", ""},
		{"image: 127.0.0.1:5000/anything/at/all@sha256:" + strings.Repeat("a", 64), ""},
		{"image: alpine:3", ""},
		{"image: registry.example.com/ci/golang, executor: kubernetes, pod: {serviceAccount: order-pusher, mountServiceAccountToken: true}", ""},
		{"image: registry.example.com/ci/golang, executor: local",
			"repo.yaml:6:87: stages[0].run.executor: local would run code pushed to repository shop on the engine's own machine"},
		{"image: registry.example.com/ci/golang}\n  - {name: b, build: {image: ghcr.io/attacker/exfil, executor: kubernetes}", "stages[1].build.image: ghcr.io/attacker/exfil is not under an image prefix of repository shop: its stages may run and push images under"},
		{"image: registry.example.com/ci/golang}\n  - {name: s, scan: {image: \"ghcr.io/other-team/app@sha256:" + strings.Repeat("0", 64) + "\"}", "stages[1].scan.image: ghcr.io/other-team/app@sha256:"},
		{"image: registry.example.com/cimalicious/x", "repo.yaml:6:45: stages[0].run.image: registry.example.com/cimalicious/x is not under an image prefix of repository shop"},
		{"image: registry.example.com.evil.io/ci/x", "not under an image prefix"},
		{"image: ghcr.io/someone/tools", "not under an image prefix"},
		{"image: 127.0.0.1:2379/etcd", "not under an image prefix"},
		{"image: \"{{ .Params.image }}\"", "stages[0].run.image: must be written literally"},
		{"image: registry.example.com/ci/golang, executor: kubernetes, pod: {serviceAccount: cluster-admin}",
			"stages[0].run.pod.serviceAccount: cluster-admin is not a service account of repository shop: its Pods may run as order-pusher"},
	} {
		if got := repo.Admit(run(tt.settings), trig); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.settings, got, tt.want)
		}
	}
	if got := repo.Executor(); got != "kubernetes" {
		t.Errorf("executor on a cluster = %q", got)
	}
	local := &Repo{Config: repo.Config, Cluster: true}
	local.Config.LocalSandbox = true
	if got := local.Admit(run("image: alpine, executor: local"), trig); got != "" || local.Executor() != "" {
		t.Errorf("a repository given the local sandbox: %q, executor %q", got, local.Executor())
	}
	noCluster := &Repo{Config: repo.Config}
	if got := noCluster.Admit(run("image: alpine, executor: local"), trig); got != "" || noCluster.Executor() != "" {
		t.Errorf("an engine without a cluster: %q, executor %q", got, noCluster.Executor())
	}
	operator, err := pipeline.Parse("ops.yaml", []byte("apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: ops}\nstages: [{name: t, run: {image: ghcr.io/x/y, commands: [make], executor: local}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := repo.Admit(operator, trig); got != "" {
		t.Errorf("the operator's own pipeline: %q", got)
	}
	g := &Grants{Repos: []*Repo{repo}}
	for _, tt := range []struct {
		untrusted bool
		want      string
	}{{true, "kubernetes"}, {false, ""}} {
		r := &store.Run{Untrusted: tt.untrusted, Trigger: store.Trigger{Repo: repo.Config.URL}}
		if got := g.Executor(r); got != tt.want {
			t.Errorf("Grants.Executor(untrusted %v) = %q, want %q", tt.untrusted, got, tt.want)
		}
		// A submodule: what the repository may clone, for a pushed pipeline.
		for u, may := range map[string]bool{"https://git.example.com/shop/order.git": true, "https://git.example.com/shop/shared.git": true,
			"https://git.example.com/payments/secret.git": !tt.untrusted, "http://git.example.com/shop/shared.git": !tt.untrusted} {
			if got := g.MayFetch(r, u); got != may {
				t.Errorf("Grants.MayFetch(untrusted %v, %s) = %v", tt.untrusted, u, got)
			}
		}
	}
}

func TestImagePrefixes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ prefix, want string }{
		{"registry.example.com", ""}, {"registry.example.com/ci/", ""}, {"127.0.0.1:5000", ""}, {"localhost/x", ""},
		{"ci", "does not start with a registry host"}, {"", "does not start with a registry host"},
		{"registry.example.com/UPPER", "is not a registry and a repository path"},
	} {
		if got := engineconfig.ImagePrefixProblem(tt.prefix); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.prefix, got, tt.want)
		}
	}
}
