// Package clone is the clone stage kind: it fetches the triggering
// repository at the exact commit of the run into the run's workdir —
// shallow by default — with go-git, or with the git CLI (--filter=blob:none)
// for very large repositories, and with token or SSH-key auth taken from
// the pipeline's secrets. Credentials never reach logs or errors.
package clone

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/stages"
)

// Request is one checkout.
type Request struct {
	URL        string
	Ref        string // refs/heads/… or refs/tags/…
	SHA        string // the exact commit; "" for the tip of Ref
	Depth      int    // commits; 0 for all history
	Submodules bool
	Dir        string // empty, or a previous checkout to replace
	Auth       Auth
	// MayFetch says whether a submodule's repository may be fetched
	// (stages.Run.MayFetch); nil: any.
	MayFetch func(url string) bool
}

// Auth is a resolved credential.
type Auth struct {
	Username string // for Token
	Token    string
	SSHKey   string // a PEM private key
}

// Cloner checks a commit out into a directory and returns its full SHA.
type Cloner interface {
	Clone(ctx context.Context, req Request, log func(format string, args ...any)) (string, error)
}

// Stage is one clone attempt.
type Stage struct {
	spec     pipeline.CloneSpec
	engines  map[string]Cloner
	lookPath func(string) (string, error) // finds git for auto; nil: exec.LookPath
}

// New returns the factory of the clone kind over its two engines.
func New(gogit, cli Cloner) stages.Factory {
	return func(spec any) (stages.Stage, error) {
		s, ok := spec.(*pipeline.CloneSpec)
		if !ok || s == nil {
			return nil, fmt.Errorf("clone stage needs a *pipeline.CloneSpec, got %T", spec)
		}
		return &Stage{spec: *s, engines: map[string]Cloner{"go-git": gogit, "git": cli}}, nil
	}
}

// Validate checks the repository URL, when the pipeline sets one: a
// remote one (a pipeline may not make the engine read its own disk).
func (s *Stage) Validate() error {
	if s.spec.Repo != "" {
		return CheckRemoteURL(s.spec.Repo)
	}
	return nil
}

// CheckRemoteURL is CheckURL, and refuses local paths and file:// URLs too.
func CheckRemoteURL(raw string) error {
	if err := CheckURL(raw); err != nil {
		return err
	}
	ep, err := transport.NewEndpoint(raw) // go-git's reading: URLs, scp-style host:path, local paths
	if err != nil || ep.Protocol == "file" || strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, ".") || strings.HasPrefix(raw, "~") {
		return fmt.Errorf("repository URL %q is a local path; only remote repositories (https://, ssh://, git@host:path) are cloned", redactURL(raw))
	}
	if err := pipeline.CheckRemoteForm(raw); err != nil {
		return fmt.Errorf("repository URL: %w", err)
	}
	return nil
}

// credentialScope is the scheme, host and port of a repository URL
// (scp-style git@host:path counts as ssh://host): where its credentials
// may go.
func credentialScope(raw string) string {
	ep, err := transport.NewEndpoint(raw)
	if err != nil || ep.Host == "" {
		return raw
	}
	scope := strings.ToLower(ep.Protocol) + "://" + strings.ToLower(ep.Host)
	if ep.Port != 0 && ep.Port != defaultPorts[ep.Protocol] {
		scope += ":" + strconv.Itoa(ep.Port)
	}
	return scope
}

var defaultPorts = map[string]int{"ssh": 22, "https": 443, "http": 80, "git": 9418}

// CheckURL refuses URLs that could run commands or be read as options.
func CheckURL(raw string) error {
	lower := strings.ToLower(raw)
	switch {
	case raw == "":
		return errors.New("no repository URL")
	case strings.HasPrefix(raw, "-"):
		return fmt.Errorf("repository URL %q looks like a command-line flag", redactURL(raw))
	case strings.Contains(lower, "--upload-pack") || strings.Contains(lower, "--receive-pack") || strings.Contains(lower, "--config"):
		return fmt.Errorf("repository URL %q carries a git option", redactURL(raw))
	case strings.HasPrefix(lower, "ext::") || strings.HasPrefix(lower, "fd::"):
		return fmt.Errorf("repository URL %q uses a transport that runs commands", redactURL(raw))
	case strings.ContainsAny(raw, "\n\r\x00 "):
		return fmt.Errorf("repository URL %q holds whitespace or control characters", redactURL(raw))
	}
	return nil
}

// engine is the engine the spec names, or for auto AutoEngine's choice.
func (s *Stage) engine() string {
	switch s.spec.Engine {
	case "go-git", "git":
		return s.spec.Engine
	}
	return AutoEngine(s.lookPath)
}

// AutoEngine is what clone.engine auto means: the git CLI wherever git is
// installed, go-git where it is not. Measured on generated repositories
// (make bench, BenchmarkCloneStage) the CLI is faster and needs less
// memory than go-git at depth 1 as for the whole history; go-git keeps
// Slipway working on a machine without git. lookPath is exec.LookPath
// (nil means exec.LookPath).
func AutoEngine(lookPath func(string) (string, error)) string {
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if _, err := lookPath("git"); err == nil {
		return "git"
	}
	return "go-git"
}

// Run checks the run's commit out into the workdir.
func (s *Stage) Run(ctx context.Context, run *stages.Run) (stages.Result, error) {
	req, err := s.request(run)
	if err != nil {
		return stages.Result{}, err
	}
	engine := s.engine()
	say := func(format string, args ...any) { fmt.Fprintf(run.Log, "slipway: "+format+"\n", args...) }
	say("cloning %s %s at %s with %s (depth %s)", redactURL(req.URL), req.Ref, orTip(req.SHA), engine, depthWord(req.Depth))
	sha, err := s.engines[engine].Clone(ctx, req, say)
	if err != nil {
		return stages.Result{}, Redact(err, req)
	}
	say("checked out %s", sha)
	src := stages.Source{Repo: redactURL(req.URL), Ref: req.Ref, SHA: sha, Username: req.Auth.Username, TokenSecret: s.spec.Auth.Token, SSHKeySecret: s.spec.Auth.SSHKey}
	out := src.Outputs()
	out["dir"], out["engine"] = req.Dir, engine
	return stages.Result{Outputs: out}, nil
}

func (s *Stage) request(run *stages.Run) (Request, error) {
	repo := s.spec.Repo
	if repo == "" {
		repo = run.Trigger.Repo
	}
	if repo == "" {
		return Request{}, errors.New("the run names no repository (it was not started by a push): set clone.repo")
	}
	if err := CheckURL(repo); err != nil {
		return Request{}, err
	}
	ref, err := pipeline.NormalizeRef(run.Trigger.Ref, "main")
	if err != nil {
		return Request{}, err
	}
	if run.Trigger.SHA != "" && !pipeline.IsCommitID(run.Trigger.SHA) {
		return Request{}, fmt.Errorf("%q is not a commit id", run.Trigger.SHA)
	}
	depth := s.spec.Depth
	switch depth {
	case 0:
		depth = 1
	case -1:
		depth = 0
	}
	req := Request{URL: repo, Ref: ref, SHA: run.Trigger.SHA, Depth: depth, Submodules: s.spec.Submodules, Dir: run.Workdir, MayFetch: run.MayFetch}
	if a := s.spec.Auth; a.Token != "" {
		req.Auth = Auth{Username: a.Username, Token: run.Secrets[a.Token]}
		if req.Auth.Username == "" {
			req.Auth.Username = "x-access-token"
		}
	} else if a.SSHKey != "" {
		req.Auth = Auth{SSHKey: run.Secrets[a.SSHKey]}
	}
	return req, nil
}

// emptyDir makes dir an empty directory (a retry starts from scratch).
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// redactURL hides the password or token of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Redact removes every credential of req from err's text.
func Redact(err error, req Request) error {
	msg := err.Error()
	for _, secret := range []string{req.Auth.Token, req.Auth.SSHKey} {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "***")
		}
	}
	if u, perr := url.Parse(req.URL); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "***")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

func orTip(sha string) string {
	if sha == "" {
		return "its tip"
	}
	return sha
}

func depthWord(d int) string {
	if d == 0 {
		return "all history"
	}
	return fmt.Sprint(d)
}

var _ stages.Stage = (*Stage)(nil)
