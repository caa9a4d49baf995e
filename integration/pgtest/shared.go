package pgtest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
)

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// DB returns the URL of a new, empty database on a server shared by the
// package's tests (started on first use). Without PostgreSQL the test is
// skipped — or, with CI=true, fails: a green CI run must not have skipped it.
func DB(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Start(context.Background(), Options{}) })
	if errors.Is(shared.err, ErrMissing) && os.Getenv("CI") != "true" {
		t.Skip(shared.err)
	}
	if shared.err != nil {
		t.Fatalf("starting PostgreSQL: %v", shared.err)
	}
	dsn, err := shared.srv.CreateDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Main runs a package's tests and then stops the shared server, if one
// was started: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	os.Exit(code)
}
