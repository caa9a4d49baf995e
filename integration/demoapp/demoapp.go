// Package demoapp is the small HTTP service the demo and the tests
// release. Its source is written out and built with the Go toolchain, in
// two versions: a clean one that needs only the standard library, and one
// that links golang.org/x/text v0.3.6, which Trivy reports as
// CVE-2021-38561 (HIGH) — the "bad commit" of the demo.
package demoapp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

const cleanGoMod = "module example.com/order-service\n\ngo 1.21\n"

const vulnerableGoMod = cleanGoMod + "\nrequire golang.org/x/text v0.3.6\n"

const cleanMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "order-service ok") })
	http.ListenAndServe(addr, nil)
}
`

const vulnerableMain = `package main

import (
	"fmt"
	"net/http"
	"os"

	"golang.org/x/text/language"
)

func main() {
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "order-service ok,", language.English)
	})
	http.ListenAndServe(addr, nil)
}
`

// Build compiles the service (statically) and returns the binary.
func Build(ctx context.Context, vulnerable bool) ([]byte, error) {
	src, err := os.MkdirTemp("", "slipway-demoapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	mod, main := cleanGoMod, cleanMain
	if vulnerable {
		mod, main = vulnerableGoMod, vulnerableMain
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(src, "app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the demo app: %v\n%s", err, b)
	}
	return os.ReadFile(out)
}

// Dockerfile builds the service FROM base: a RUN, the binary, its command.
func Dockerfile(base string) string {
	return fmt.Sprintf("FROM %s\nRUN echo \"order-service, built by kaniko\" > /etc/motd\nCOPY app /app\nRUN chmod 755 /app\nENV LISTEN=:8080\nCMD [\"/app\"]\n", base)
}
