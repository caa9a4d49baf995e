// Package gitserver serves real git repositories over smart HTTP on
// loopback — `git http-backend` behind net/http/cgi, push enabled — for
// tests and the demo. It also offers a work-tree helper that commits and
// pushes through the git CLI, the way a developer would.
package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server is a git smart-HTTP server over the bare repositories in Root.
type Server struct {
	Root string
	URL  string // http://127.0.0.1:PORT
	srv  *http.Server
	// Token, when set, is the password every request must carry (HTTP
	// basic auth, any user name), as a forge's access token.
	Token string

	mu    sync.Mutex
	auths []string // Authorization headers received, in order
}

// Authorizations returns the Authorization headers requests carried ("" for none).
func (s *Server) Authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auths)
}

// Start serves the bare repositories under root on a free loopback port
// until ctx is done or Close is called.
func Start(ctx context.Context, root string) (*Server, error) {
	backend, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("git server: %w", err)
	}
	execPath, err := exec.Command(backend, "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git server: git --exec-path: %w", err)
	}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("git server: %w", err)
	}
	s := &Server{Root: root, URL: "http://" + ln.Addr().String()}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if s.Token != "" {
			if _, pass, ok := r.BasicAuth(); !ok || pass != s.Token {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})}
	go s.srv.Serve(ln)
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// CreateRepo makes an empty bare repository name.git that accepts pushes
// over HTTP and returns its clone URL.
func (s *Server) CreateRepo(name string) (string, error) {
	dir := filepath.Join(s.Root, name+".git")
	if err := run("", "git", "init", "--quiet", "--bare", "--initial-branch=main", dir); err != nil {
		return "", err
	}
	if err := run(dir, "git", "config", "http.receivepack", "true"); err != nil {
		return "", err
	}
	// Let clients fetch a commit by its ID (a pushed SHA the branch has moved past).
	if err := run(dir, "git", "config", "uploadpack.allowAnySHA1InWant", "true"); err != nil {
		return "", err
	}
	return s.URL + "/" + name + ".git", nil
}

// WorkTree is a clone that commits and pushes with the git CLI.
type WorkTree struct {
	Dir string
}

// Clone clones url into dir.
func Clone(url, dir string) (*WorkTree, error) {
	if err := run("", "git", "clone", "--quiet", url, dir); err != nil {
		return nil, err
	}
	// A large post buffer makes git send Content-Length, which CGI needs
	// (it cannot take a chunked request body).
	for _, kv := range [][2]string{{"user.name", "Slipway Test"}, {"user.email", "test@slipway.invalid"}, {"commit.gpgsign", "false"},
		{"http.postBuffer", "524288000"}} {
		if err := run(dir, "git", "config", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return &WorkTree{Dir: dir}, nil
}

// Commit writes files (path → content; "" deletes) and commits them on
// branch, creating it when needed; it returns the new commit's SHA.
func (w *WorkTree) Commit(branch, message string, files map[string]string) (string, error) {
	if err := run(w.Dir, "git", "checkout", "--quiet", "-B", branch); err != nil {
		return "", err
	}
	for path, content := range files {
		full := filepath.Join(w.Dir, path)
		if content == "" {
			if err := os.Remove(full); err != nil {
				return "", err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if err := run(w.Dir, "git", "add", "--all"); err != nil {
		return "", err
	}
	if err := run(w.Dir, "git", "commit", "--quiet", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	return w.Head()
}

// Head returns the SHA of HEAD.
func (w *WorkTree) Head() (string, error) {
	out, err := output(w.Dir, "git", "rev-parse", "HEAD")
	return strings.TrimSpace(out), err
}

// Push pushes refs (e.g. "main", "v1.0.0") to origin.
func (w *WorkTree) Push(refs ...string) error {
	return run(w.Dir, "git", append([]string{"push", "--quiet", "origin"}, refs...)...)
}

// Tag creates a lightweight tag at HEAD.
func (w *WorkTree) Tag(name string) error { return run(w.Dir, "git", "tag", name) }

func run(dir, name string, args ...string) error {
	_, err := output(dir, name, args...)
	return err
}

func output(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
