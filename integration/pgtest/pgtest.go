// Package pgtest starts throwaway PostgreSQL servers for tests and
// benchmarks: Debian's postgresql binaries, initdb into a temporary
// directory, a free loopback port, password authentication, removed when
// stopped. A test asks for a fresh database with DB; a package that does
// so runs its tests through Main, which stops the shared server after them.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options shape a server.
type Options struct {
	// Durable keeps fsync and synchronous commit on, as in production:
	// for benchmarks of what is acknowledged. Tests leave it off.
	Durable bool
	// Settings are more `-c name=value` server settings.
	Settings map[string]string
}

// Server is one running PostgreSQL server.
type Server struct {
	Dir      string // its data directory (and socket directory)
	Port     int
	User     string
	Password string
	cmd      *exec.Cmd
	exited   chan error
	bin      string // what it was started with, to start it again
	data     string
	cred     *syscall.Credential
	opt      Options
	n        int // databases created
	mu       sync.Mutex
}

// ErrMissing says Debian's postgresql package is not installed.
var ErrMissing = errors.New("PostgreSQL server binaries not found (Debian's postgresql package; make tools installs it)")

// BinDir finds the directory holding initdb and postgres: $SLIPWAY_PG_BIN,
// or the newest /usr/lib/postgresql/<version>/bin.
func BinDir() (string, error) {
	if d := os.Getenv("SLIPWAY_PG_BIN"); d != "" {
		return d, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		return "", ErrMissing
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return filepath.Dir(found[len(found)-1]), nil
}

func version(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(bin))))
	return n
}

// Start initializes a data directory and starts a server on 127.0.0.1.
// PostgreSQL refuses to run as root, so as root it runs as Debian's
// postgres user (or nobody).
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "slipway-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, User: "slipway", Password: randomHex(16)}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", s.User, "--pwfile", pwfile,
		"--auth", "scram-sha-256", "--encoding", "UTF8", "--locale", "C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb %s: %w\n%s", data, err, out))
	}
	os.Remove(pwfile)
	for try := 0; ; try++ {
		err := s.start(ctx, bin, data, cred, opt)
		if err == nil {
			return s, nil
		}
		if try == 2 {
			return fail(err)
		}
	}
}

// start runs postgres on a port that was free a moment ago and waits
// until it answers; a lost race for the port is an error the caller retries.
func (s *Server) start(ctx context.Context, bin, data string, cred *syscall.Credential, opt Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	return s.startOn(ctx, port, bin, data, cred, opt)
}

// startOn runs postgres on port and waits until it answers.
func (s *Server) startOn(ctx context.Context, port int, bin, data string, cred *syscall.Credential, opt Options) error {
	s.bin, s.data, s.cred, s.opt = bin, data, cred, opt
	s.Port = port
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", s.Dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200"}
	if !opt.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for k, v := range opt.Settings {
		args = append(args, "-c", k+"="+v)
	}
	var logs bytes.Buffer
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan error, 1)
	go func() { s.exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case werr := <-s.exited:
			return fmt.Errorf("postgres on port %d exited (%v) before it answered: %s", port, werr, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("postgres on port %d did not answer in 30 s: %v\n%s", port, err, logs.String())
		}
	}
}

// DSN is the URL of database db on the server.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(s.User, s.Password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDB creates an empty database and returns its URL.
func (s *Server) CreateDB(ctx context.Context) (string, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("t%d", s.n)
	s.mu.Unlock()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Crash stops the server as a crash would (an immediate shutdown: no
// checkpoint, every session cut) and, after down, starts it again on its
// port, where it recovers from its write-ahead log.
func (s *Server) Crash(ctx context.Context, down time.Duration) error {
	s.halt(syscall.SIGQUIT)
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.startOn(ctx, s.Port, s.bin, s.data, s.cred, s.opt)
}

// Stop stops the server (a fast shutdown: open sessions are ended) and
// removes its directory.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		s.halt(syscall.SIGINT)
	}
	return os.RemoveAll(s.Dir)
}

// halt asks the server to shut down with sig (killing it after 20 s) and
// waits until it has.
func (s *Server) halt(sig syscall.Signal) {
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// serverUser is the user postgres runs as: nil (this process's) unless
// this process is root.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
