// Command intakefloor is the floor the webhook intake is measured
// against: a bare HTTP handler that does only what no intake can skip —
// read the body, verify its GitHub HMAC-SHA256 signature, store the
// delivery's row in the same store (SQLite, or PostgreSQL with -database)
// and answer 202 once it is committed. It prints its address and serves
// until killed. Loopback only; see bench/intake.sh.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
)

func main() {
	secret := flag.String("secret", "", "webhook secret")
	data := flag.String("data", "", "directory of the SQLite database")
	database := flag.String("database", "", "PostgreSQL URL (instead of -data)")
	password := flag.String("password-file", "", "file holding the PostgreSQL password")
	flag.Parse()
	if err := run(*secret, *data, *database, *password); err != nil {
		fmt.Fprintln(os.Stderr, "intakefloor:", err)
		os.Exit(1)
	}
}

func run(secret, data, database, passwordFile string) error {
	ctx := context.Background()
	var (
		st  *sqlstore.Store
		err error
	)
	if database != "" {
		pw, rerr := os.ReadFile(passwordFile)
		if rerr != nil {
			return rerr
		}
		st, err = sqlstore.OpenPostgres(ctx, database, strings.TrimSpace(string(pw)))
	} else {
		st, err = sqlstore.OpenSQLite(ctx, filepath.Join(data, "floor.db"))
	}
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("intakefloor serving on http://%s\n", ln.Addr())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 25<<20))
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		got, _ := hex.DecodeString(strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256="))
		if !hmac.Equal(got, m.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		d := &store.Delivery{Forge: "github", ID: r.Header.Get("X-GitHub-Delivery"), ReceivedAt: time.Now(), Event: "push",
			Repo: "web", Status: store.DeliveryReceived, Payload: body}
		if _, err := st.CreateDelivery(r.Context(), d); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
}
