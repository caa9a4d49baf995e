// Command pgserver runs a throwaway PostgreSQL server for the benchmarks
// (Debian's postgresql, initdb into a temporary directory, loopback, fsync
// and synchronous commit on, as in production): it prints the URL of a new
// database for each name in -databases, without its password — one line
// "pgserver database NAME URL" each, so that no measurement finds the rows
// of another — and writes the password to -password-file; SIGINT or
// SIGTERM stops the server and removes it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/slipwayci/slipway/integration/pgtest"
)

func main() {
	pwFile := flag.String("password-file", "", "where to write the password")
	names := flag.String("databases", "bench", "comma-separated names: a new database for each")
	flag.Parse()
	if err := run(*pwFile, strings.Split(*names, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "pgserver:", err)
		os.Exit(1)
	}
}

func run(pwFile string, names []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := pgtest.Start(ctx, pgtest.Options{Durable: true, Settings: map[string]string{"max_connections": "300"}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	if err := os.WriteFile(pwFile, []byte(srv.Password+"\n"), 0o600); err != nil {
		return err
	}
	for _, name := range names {
		dsn, err := srv.CreateDB(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("pgserver database %s %s\n", name, strings.Replace(dsn, ":"+srv.Password+"@", "@", 1))
	}
	<-ctx.Done()
	return nil
}
