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
	"strings"
)

const cleanGoMod = "module example.com/order-service\n\ngo 1.21\n"

const vulnerableGoMod = cleanGoMod + "\nrequire golang.org/x/text v0.3.6\n"

// serviceMain is the service: it listens on $LISTEN (default
// $POD_IP:8080, else :8080), answers /healthz, and answers / after the
// latency and with the error rate its behaviour file sets — so a "bad
// commit" that raises them really serves 5xx and slow responses.
// LANGUAGE_IMPORT and LANGUAGE_USE switch golang.org/x/text in or out.
const serviceMain = `package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"time"
	LANGUAGE_IMPORT
)

type behaviour struct {
	ErrorRate float64 ` + "`json:\"errorRate\"`" + `
	LatencyMs int     ` + "`json:\"latencyMs\"`" + `
	Version   string  ` + "`json:\"version\"`" + `
	Unhealthy bool    ` + "`json:\"unhealthy\"`" + `
}

func main() {
	var b behaviour
	path := os.Getenv("BEHAVIOUR_FILE")
	if path == "" {
		path = "/etc/order-service/behaviour.json"
	}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &b); err != nil {
			fmt.Fprintln(os.Stderr, "bad behaviour file:", err)
			os.Exit(2)
		}
	}
	addr := os.Getenv("LISTEN")
	if addr == "" && os.Getenv("POD_IP") != "" {
		addr = os.Getenv("POD_IP") + ":8080"
	}
	if addr == "" {
		addr = ":8080"
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if b.Unhealthy {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(b.LatencyMs) * time.Millisecond)
		if rand.Float64() < b.ErrorRate {
			http.Error(w, "order-service failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "order-service %s ok%s\n", b.Version, LANGUAGE_USE)
	})
	fmt.Println("order-service", b.Version, "listening on", addr)
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// source is the service's main.go, with or without golang.org/x/text.
func source(vulnerable bool) string {
	imp, use := "", `""`
	if vulnerable {
		imp, use = `"golang.org/x/text/language"`, `", "+language.English.String()`
	}
	return strings.NewReplacer("LANGUAGE_IMPORT", imp, "LANGUAGE_USE", use).Replace(serviceMain)
}

// UnhealthyBehaviour is a behaviour file whose service fails its /healthz.
func UnhealthyBehaviour(version string) string {
	return fmt.Sprintf("{\"version\": %q, \"unhealthy\": true}\n", version)
}

// Behaviour is the service's behaviour file: how often it fails and how slow it is.
func Behaviour(version string, errorRate float64, latencyMs int) string {
	return fmt.Sprintf("{\"version\": %q, \"errorRate\": %g, \"latencyMs\": %d}\n", version, errorRate, latencyMs)
}

// Build compiles the service (statically) and returns the binary.
func Build(ctx context.Context, vulnerable bool) ([]byte, error) {
	src, err := os.MkdirTemp("", "slipway-demoapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	mod, main := cleanGoMod, source(false)
	if vulnerable {
		mod, main = vulnerableGoMod, source(true)
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

// Dockerfile builds the service FROM base: a RUN, the binary, its
// behaviour file (behaviour.json beside the Dockerfile, when there is
// one), its command.
func Dockerfile(base string) string {
	return fmt.Sprintf("FROM %s\nRUN echo \"order-service, built by kaniko\" > /etc/motd && mkdir -p /etc/order-service\n"+
		"COPY app /app\nCOPY *.json /etc/order-service/\nRUN chmod 755 /app\nCMD [\"/app\"]\n", base)
}
