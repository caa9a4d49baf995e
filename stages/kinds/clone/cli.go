package clone

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/slipwayci/slipway/stages/workspace"
)

// CLI clones with the git command: a partial clone (--filter=blob:none)
// that fetches file contents only for the commit checked out — the way to
// take very large repositories. Credentials go through the environment
// (an HTTP header, or an SSH key file), never the command line.
type CLI struct {
	Git string // default "git"
}

// Clone fetches the commit and checks it out, detached.
func (c CLI) Clone(ctx context.Context, req Request, log func(string, ...any)) (string, error) {
	if err := emptyDir(req.Dir); err != nil {
		return "", fmt.Errorf("preparing %s: %w", req.Dir, err)
	}
	env, cleanup, err := cliAuthEnv(req.Auth, req.URL)
	if err != nil {
		return "", err
	}
	defer cleanup()
	// A private, empty HOME: nothing in a shared directory (a .gitconfig
	// with core.hooksPath, say) configures this git.
	home, err := os.MkdirTemp("", "slipway-git-home-")
	if err != nil {
		return "", fmt.Errorf("making git's home: %w", err)
	}
	defer os.RemoveAll(home)
	env = append(env, "HOME="+home)
	run := func(args ...string) (string, error) { return c.git(ctx, req.Dir, env, args...) }
	depth := []string{}
	if req.Depth > 0 {
		depth = []string{"--depth", strconv.Itoa(req.Depth)}
	}
	steps := [][]string{
		{"init", "--quiet"},
		{"remote", "add", "origin", req.URL},
		{"config", "remote.origin.promisor", "true"},
		{"config", "remote.origin.partialclonefilter", "blob:none"},
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			return "", err
		}
	}
	fetched := false
	if req.SHA != "" && len(req.SHA) == 40 {
		if _, err := run(append(append([]string{"fetch", "--quiet", "--no-tags", "--filter=blob:none"}, depth...), "origin", req.SHA)...); err == nil {
			fetched = true
		} else if ctx.Err() != nil {
			return "", err
		} else {
			log("the server would not send commit %s by its id; fetching %s instead", req.SHA, req.Ref)
		}
	}
	if !fetched {
		if _, err := run(append(append([]string{"fetch", "--quiet", "--no-tags", "--filter=blob:none"}, depth...), "origin", "+"+req.Ref+":"+pushedRef)...); err != nil {
			return "", err
		}
	}
	want := req.SHA
	if want == "" {
		want = pushedRef
	}
	if _, err := run("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", want, "--"); err != nil {
		return "", fmt.Errorf("checking out %s: %w (is it within clone.depth of %s?)", want, err, req.Ref)
	}
	if req.Submodules {
		if (req.Auth != Auth{}) {
			log("credentials are sent only to %s; submodules elsewhere are fetched without them", credentialScope(req.URL))
		}
		if err := c.submodules(ctx, req.Dir, req.URL, req, depth, env, 8); err != nil {
			return "", err
		}
	}
	sha, err := run("rev-parse", "HEAD")
	return strings.TrimSpace(sha), err
}

func (c CLI) git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	bin := c.Git
	if bin == "" {
		bin = "git"
	}
	// Hermetic: no system or global config, no hooks, no local or command
	// transports (for the repository or any submodule).
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=never"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append([]string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "PATH=" + os.Getenv("PATH"),
		"GIT_PROTOCOL_FROM_USER=0", "GIT_ALLOW_PROTOCOL=http:https:ssh:git"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// cliAuthEnv passes a credential to git through its environment. An HTTP
// token is scoped to the repository's scheme and host (git's http.<url>.*
// matching), so a submodule elsewhere never receives it.
func cliAuthEnv(a Auth, repoURL string) (env []string, cleanup func(), err error) {
	switch {
	case a.Token != "":
		header := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Token))
		key := "http." + credentialScope(repoURL) + ".extraHeader"
		return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=" + key, "GIT_CONFIG_VALUE_0=" + header}, func() {}, nil
	case a.SSHKey != "":
		dir, err := os.MkdirTemp("", "slipway-ssh-")
		if err != nil {
			return nil, nil, err
		}
		key := filepath.Join(dir, "key")
		if err := os.WriteFile(key, []byte(strings.TrimRight(a.SSHKey, "\n")+"\n"), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		return []string{"GIT_SSH_COMMAND=ssh -i " + key + " -o IdentitiesOnly=yes -o BatchMode=yes"}, func() { os.RemoveAll(dir) }, nil
	}
	return nil, func() {}, nil
}

var _ Cloner = CLI{}

// submodules checks out the submodules of the checkout in dir (whose
// remote is base), then theirs, levels deep: each submodule's URL —
// resolved, when relative, against its superproject's — is first asked of
// req.MayFetch. Without MayFetch, git recurses by itself.
func (c CLI) submodules(ctx context.Context, dir, base string, req Request, depth, env []string, levels int) error {
	update := append([]string{"submodule", "update", "--init"}, depth...)
	if req.MayFetch == nil {
		_, err := c.git(ctx, dir, env, append(update, "--recursive")...)
		return err
	}
	urls, err := c.gitmodules(ctx, dir, env, "url")
	if err != nil || len(urls) == 0 {
		return err
	}
	for name, u := range urls {
		abs, err := resolveSubmodule(base, u)
		if err != nil {
			return fmt.Errorf("submodule %s: %w", name, err)
		}
		if err := mayFetch(req, name, abs); err != nil {
			return err
		}
		urls[name] = abs
	}
	if _, err := c.git(ctx, dir, env, update...); err != nil {
		return err
	}
	if levels <= 1 {
		return nil
	}
	paths, err := c.gitmodules(ctx, dir, env, "path")
	if err != nil {
		return err
	}
	for name, p := range paths {
		sub, err := workspace.Resolve(dir, p, workspace.Dir)
		if err != nil {
			return fmt.Errorf("submodule %s: %w", name, err)
		}
		if err := c.submodules(ctx, sub, urls[name], req, depth, env, levels-1); err != nil {
			return err
		}
	}
	return nil
}

// gitmodules reads one setting (url, path) of every submodule that
// dir/.gitmodules declares, by name; none when there is no such file.
func (c CLI) gitmodules(ctx context.Context, dir string, env []string, key string) (map[string]string, error) {
	if _, err := os.Lstat(filepath.Join(dir, ".gitmodules")); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	out, err := c.git(ctx, dir, env, "config", "--file", ".gitmodules", "--get-regexp", `^submodule\..*\.`+key+`$`)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 { // no submodule declares one
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .gitmodules: %w", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		got[strings.TrimSuffix(strings.TrimPrefix(k, "submodule."), "."+key)] = v
	}
	return got, nil
}

// resolveSubmodule is a submodule's URL as git reads it: a relative one
// (./x, ../x) from its superproject's URL, taken as a directory.
func resolveSubmodule(base, u string) (string, error) {
	if !strings.HasPrefix(u, "./") && !strings.HasPrefix(u, "../") {
		return u, nil
	}
	b, err := url.Parse(base)
	if err != nil || b.Scheme == "" {
		return "", fmt.Errorf("%s is relative to %s, which is not a URL it can be resolved against", u, redactURL(base))
	}
	b.Path = path.Join(b.Path, u)
	return b.String(), nil
}
