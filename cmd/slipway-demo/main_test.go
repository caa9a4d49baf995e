package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	if _, err := slipwayBinary(filepath.Join(t.TempDir(), "slipway")); err == nil || !strings.Contains(err.Error(), "finding the slipway binary") {
		t.Errorf("a missing slipway binary: %v", err)
	}
}

// make demo tells the whole story on this machine with the slipway binary
// a user would run: pushed to Gitea, a good change promoted through every
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
		"slipway/order-service failure — scan: 1 finding(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
