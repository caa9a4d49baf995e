package clone

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
		if _, err := run(append([]string{"submodule", "update", "--init", "--recursive"}, depth...)...); err != nil {
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
