package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--listen"}, "flag needs an argument: -listen"},
	} {
		code, _, errs := run(t, tt.args...)
		if code != 2 || !strings.Contains(errs, tt.msg) {
			t.Errorf("slipway-demo %v: exit %d, stderr %q; want exit 2 with %q", tt.args, code, errs, tt.msg)
		}
	}
	if code, _, errs := run(t, "--source", t.TempDir()); code != 1 || !strings.Contains(errs, "the demo deploys Slipway from its checkout (--source") {
		t.Errorf("slipway-demo --source EMPTY-DIR: exit %d, stderr %q", code, errs)
	}
	if _, err := slipwayBinary(filepath.Join(t.TempDir(), "slipway")); err == nil || !strings.Contains(err.Error(), "finding the slipway binary") {
		t.Errorf("a missing slipway binary: %v", err)
	}
}

// make demo tells the whole story on this machine with the slipway binary
// a user would run, deployed in the cluster by Argo CD: pushed to Gitea, a good change promoted through every
// canary step, a bad one rolled back at its first step with the
// explanation, a vulnerable one stopped by the scan — each commit's
// status shown by Gitea.
func TestDemoPromotesRollsBackAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo starts a cluster and runs real builds")
	}
	if err := demoPrerequisites(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skip(err)
	}
	// Exactly what a newcomer types (make demo), exiting at once.
	cmd := exec.Command("make", "-C", "../..", "demo", "DEMO_FLAGS=--data "+t.TempDir()+" --listen 127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DEMO_EXIT=1")
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	for _, want := range []string{"step 4 of 4: 100% of traffic on the canary", "promoted: the stable workload runs", "run 1 succeeded",
		"rolled back: traffic back on stable", "run 2 failed", "CVE-2021-38561 (HIGH) in golang.org/x/text v0.3.6", "run 3 failed",
		"Why was release 2 rolled back?", "success-rate", "< min 99", ">> notification (promoted)", ">> notification (rolled-back)", "Where to look:",
		"its webhook started run 1", "Gitea shows on", "slipway/order-service success — canary promoted to 100 %", "slipway/order-service failure — canary: rolled back: success-rate",
		"slipway/order-service failure — scan: 1 finding(s)",
		// Slipway itself in the cluster: its image, Argo CD's sync, the stage Pods, the Trivy server.
		"Slipway's image built by Kaniko from Dockerfile", "Argo CD synced Slipway", "Slipway answers in the cluster at http://10.",
		"in pod slipway-builds/slipway-1-test-", "in pod slipway-builds/slipway-1-build-", "asking the Trivy server"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// The pipeline and engine config the demo deploys are valid once filled
// in, so a mistake in them fails here, not minutes into make demo.
func TestDemoConfigIsValid(t *testing.T) {
	pipe := strings.NewReplacer("__REPO__", "http://10.244.0.1:3000/shop/order-service.git", "__REGISTRY__", "10.244.0.1:5000",
		"__BASE__", "10.244.0.1:5000/base/busybox:1", "__CONFIG__", "http://10.244.0.1:8000/gitops.git", "__ARGOCD__", "10.244.0.1:8001",
		"__PROMETHEUS__", "http://10.244.0.1:9090", "__NOTIFY__", "http://10.244.0.1:8002/releases").Replace(demoPipeline)
	p, err := pipeline.Parse("order-service.yaml", []byte(pipe))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Stages {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "clone test build scan deploy canary" {
		t.Errorf("stages %s", got)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "slipway.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf(engineConfig, "http://127.0.0.1:3000/shop/order-service.git", "http://10.244.0.1:3000/api/v1")), 0o600)
	os.WriteFile(filepath.Join(dir, "order-service.yaml"), []byte(pipe), 0o600)
	for _, env := range []string{"WEBHOOK_SECRET", "GITEA_TOKEN", "SLIPWAY_ADMIN_TOKEN"} {
		t.Setenv(env, "x")
	}
	if _, err := engineconfig.Load(config); err != nil {
		t.Fatal(err)
	}
}
