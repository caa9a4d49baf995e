package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/forgestatus"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/server"
	"github.com/slipwayci/slipway/triggers"
)

func newServeCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the engine: webhooks, schedules, the run API and /metrics",
		Long: `Run the long-lived engine. It receives pushes from git forges at /hooks/{github,gitlab,gitea},
fires schedules, serves the JSON API under /api/v1 and its own /metrics. SIGTERM or Ctrl-C stops
intake, lets requests in flight finish, and hands running stages back to the queue: the next
start resumes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), configPath, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "slipway.yaml", "engine config file")
	return cmd
}

// serve runs the engine until ctx is done.
func serve(ctx context.Context, configPath string, stdout, stderr io.Writer) error {
	cfg, err := engineconfig.Load(configPath)
	if err != nil {
		return exitCode{code: 1, err: fmt.Errorf("%s is not a valid engine config:\n%v", configPath, err)}
	}
	res, err := resolve(cfg, os.LookupEnv)
	if err != nil {
		return exitCode{code: 1, err: err}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := privateDir(cfg.Data); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	set, err := configSettings(cfg, os.LookupEnv)
	if err != nil {
		return exitCode{code: 1, err: err}
	}
	podsRunner, err := podRunner(set)
	if err != nil {
		return err
	}
	kinds, err := stageKinds(podsRunner, set)
	if err != nil {
		return err
	}
	metrics := server.NewMetrics(st)
	ln, err := net.Listen(family(cfg.Listen), cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	baseURL := cfg.URL
	if baseURL == "" {
		baseURL = "http://" + ln.Addr().String()
	}
	reporter, err := statusReporter(st, res.Repos, baseURL, metrics, log)
	if err != nil {
		return err
	}
	for _, repo := range res.Repos { // their pushed code runs in Pods when there is a cluster
		repo.Cluster = podsRunner != nil
	}
	grants := &triggers.Grants{Repos: res.Repos, LookupEnv: os.LookupEnv}
	opts := []runner.Option{runner.WithLogger(log), runner.WithObserver(metrics), runner.WithRunChanged(reporter.RunChanged),
		runner.WithWorkRoot(filepath.Join(cfg.Data, "work")), runner.WithSecrets(grants), runner.WithAdmission(grants)}
	if ttl := cfg.LeaseTTL(); ttl > 0 {
		id := engineID()
		log = log.With("engine", id)
		opts = append(opts, runner.WithLease(id, ttl), runner.WithLogger(log))
	}
	r, err := runner.New(st, kinds, opts...)
	if err != nil {
		return err
	}
	resumed, failed, err := r.Recover(ctx)
	if err != nil {
		return err
	}
	if n, err := reapPods(ctx, podsRunner, st); err != nil {
		log.Warn("reaping stage pods", "err", err)
	} else if n > 0 {
		log.Info("deleted the stage pods of runs that had ended", "pods", n)
	}
	intake, err := triggers.NewIntake(res.Repos, st, r, triggers.WithMaxBody(cfg.Webhooks.MaxBodyBytes),
		triggers.WithCounter(metrics.Webhook), triggers.WithIntakeLogger(log))
	if err != nil {
		return err
	}
	redone, err := intake.Recover(ctx)
	if err != nil {
		return err
	}
	log.Info("engine starting", "listen", cfg.Listen, "data", cfg.Data, "repositories", len(res.Repos),
		"runs_resumed", resumed, "runs_failed", failed, "deliveries_reprocessed", redone)
	// The schedules are read from the repositories once the engine serves:
	// a slow or huge repository must not keep /healthz from answering.
	schedules := func(ctx context.Context) {
		sched, err := triggers.NewScheduler(ctx, res.Repos, st, r, log)
		if err != nil {
			log.Error("reading the schedules; none fires until the engine restarts", "err", err)
			return
		}
		log.Info("schedules read", "schedules", sched.Len())
		sched.Run(ctx)
	}
	background := []func(context.Context){schedules, reporter.Run}
	if every := time.Duration(cfg.Webhooks.ReconcileEvery); every > 0 {
		background = append(background, triggers.NewReconciler(intake, every, triggers.WithFound(metrics.MissedPush)).Run)
	}
	return serveHTTP(ctx, ln, server.New(st, r, intake, res, metrics, log).Handler(), r, stdout, log, background...)
}

// statusReporter reports runs of the repositories that ask for it as
// commit statuses on their forge, linking to baseURL.
func statusReporter(st forgestatus.Runs, repos []*triggers.Repo, baseURL string, metrics *server.Metrics, log *slog.Logger) (*forgestatus.Reporter, error) {
	forges := map[string]forgestatus.Forge{}
	for _, repo := range repos {
		if s := repo.Config.Status; s != nil {
			f, err := statusForge(repo)
			if err != nil {
				return nil, fmt.Errorf("repository %s: %w", repo.Config.Name, err)
			}
			forges[repo.Config.URL] = f
		}
	}
	return forgestatus.NewReporter(st, forges, baseURL, forgestatus.Options{Count: metrics.CommitStatus, Log: log}), nil
}

// statusForge is the commit status API of repo, written with its token or
// as its GitHub App.
func statusForge(repo *triggers.Repo) (forgestatus.Forge, error) {
	s := repo.Config.Status
	if s.GitHubApp == nil {
		return forgestatus.New(repo.Config.Forge, repo.Config.URL, s.API, repo.StatusToken)
	}
	key, err := forgestatus.ParsePrivateKey([]byte(repo.StatusAppKey))
	if err != nil {
		return nil, err
	}
	return forgestatus.NewGitHubApp(repo.Config.URL, s.API, forgestatus.GitHubApp{ID: s.GitHubApp.ID, Installation: s.GitHubApp.Installation, Key: key})
}

// maxConnections bounds the engine's open connections.
const maxConnections = 1024

// serveHTTP serves h and drives the runner and the scheduler until ctx is done,
// then shuts down in order: intake first, then the runner.
// background runs beside the engine until it stops (the scheduler, the
// status reporter).
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, r *runner.Runner, stdout io.Writer, log *slog.Logger, background ...func(context.Context)) error {
	// Headers in 5 s (a connection that sends none holds one of the
	// maxConnections places no longer, and a forge's delivery waiting
	// behind a flood of them is served within its own 10 s timeout), idle
	// connections closed after 30 s, at most maxConnections at once and a
	// quarter of them from one address; each
	// request has its own deadlines (server.Handler: webhook bodies at a
	// minimum pace, the API's small and bounded, SSE streams unbounded).
	ln = limitPerAddress(netutil.LimitListener(ln, maxConnections), maxConnections/4)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10}
	fmt.Fprintf(stdout, "slipway serving on http://%s\n", ln.Addr())
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ran := make(chan error, 1)
	go func() { ran <- r.Serve(engineCtx) }()
	for _, run := range background {
		go run(engineCtx)
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		stopEngine()
		<-ran
		return fmt.Errorf("serving: %w", err)
	}
	log.Info("shutting down: no new deliveries; requests in flight finish")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutting down HTTP", "err", err)
	}
	stopEngine() // running stages are interrupted and go back to the queue
	<-ran
	log.Info("engine stopped")
	return nil
}

// openStore opens the store the config names: PostgreSQL when it has a
// database, else SQLite in the data directory.
func openStore(ctx context.Context, cfg *engineconfig.Config) (*sqlstore.Store, error) {
	if cfg.Database == nil {
		return sqlstore.OpenSQLite(ctx, filepath.Join(cfg.Data, "slipway.db"))
	}
	password, err := cfg.DatabasePassword(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return sqlstore.OpenPostgres(ctx, cfg.Database.URL, password)
}

// engineID names this engine among those sharing a database: its host,
// its process and a random suffix (a restarted engine is a new one).
func engineID() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// family is the network an address to listen on names: an IPv4 address,
// 0.0.0.0 too, is IPv4 only ("tcp" would listen on IPv6 as well, where a
// cluster's NetworkPolicy agent may not look); an IPv6 one IPv6 only; a
// name or no host, both.
func family(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	switch {
	case err != nil || ip == nil:
		return "tcp"
	case ip.To4() != nil:
		return "tcp4"
	}
	return "tcp6"
}
