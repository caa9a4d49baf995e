package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// inFlight starts a run (of the slow pipeline: it stays running) and
// checkpoints it as a release of app shop at 25%, as a canary stage would.
func (a *apiTest) inFlight(t testing.TB) int64 {
	t.Helper()
	code, run := a.do(t, "POST", "/api/v1/pipelines/slow/runs", "rm-token", "")
	if code != 201 {
		t.Fatalf("trigger: %d %v", code, run)
	}
	id := int64(run["id"].(float64))
	err := a.st.SaveRelease(context.Background(), &store.Release{RunID: id, App: "shop", Checkpoint: release.Checkpoint{State: release.Paused, Step: 1, Weight: 25}, UpdatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (a *apiTest) commands(t *testing.T, run int64) []string {
	t.Helper()
	var out []string
	for {
		c, err := a.st.TakeCommand(context.Background(), run, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			return out
		}
		out = append(out, string(c.Name)+" by "+c.Actor)
	}
}

// Release commands need the release-manager role and the app in scope,
// reach the release in flight as commands, and are audited — refusals too.
func TestReleaseCommands(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	if code, out := a.do(t, "POST", "/api/v1/apps/shop/promote", "rm-token", ""); code != 409 || !strings.Contains(fmt.Sprint(out["error"]), "no release of shop is in flight") {
		t.Errorf("promote with nothing in flight: %d %v", code, out)
	}
	run := a.inFlight(t)
	if code, out := a.do(t, "POST", "/api/v1/apps/shop/pause", "rm-token", ""); code != 409 ||
		fmt.Sprint(out["error"]) != fmt.Sprintf("pause not sent to the release of shop (run %d): the release is already paused", run) {
		t.Errorf("pause of a paused release: %d %v", code, out)
	}
	tests := []struct {
		path, token, body string
		code              int
	}{
		{"/api/v1/apps/shop/promote", "rm-token", "", 202},
		{"/api/v1/apps/shop/promote", "rm-token", `{"full": true}`, 202},
		{"/api/v1/apps/shop/pause", "admin-token", "", 409}, // the release is already paused: nothing is sent
		{"/api/v1/apps/shop/resume", "admin-token", "", 202},
		{"/api/v1/apps/shop/abort", "rm-token", `{"reason": "checkout is slow"}`, 202},
		{"/api/v1/apps/shop/promote", "view-token", "", 403},
		{"/api/v1/apps/shop/promote", "", "", 401},
		{"/api/v1/apps/shop/abort", "rm-token", `{"full": true}`, 400},
		{"/api/v1/apps/shop/abort", "rm-token", `{"reason": 7}`, 400},
		{"/api/v1/apps/shop/abort", "rm-token", `{"why": "x"}`, 400},
		{"/api/v1/apps/shop/abort", "rm-token", `{} {}`, 400},
		{"/api/v1/apps/shop/abort", "rm-token", `{"reason": "` + strings.Repeat("x", 2000) + `"}`, 400},
		{"/api/v1/apps/shop/abort", "rm-token", `{"reason": "` + strings.Repeat("x", 100<<10) + `"}`, 400},
		{"/api/v1/apps/sh%20op/abort", "rm-token", "", 400},
		{"/api/v1/apps/billing/abort", "rm-token", "", 409},
		{"/api/v1/apps/shop/rollout", "rm-token", "", 404},
	}
	for _, tt := range tests {
		if code, out := a.do(t, "POST", tt.path, tt.token, tt.body); code != tt.code {
			t.Errorf("POST %s (%s, %.40q): %d %v, want %d", tt.path, tt.token, tt.body, code, out, tt.code)
		}
	}
	got := a.commands(t, run)
	want := []string{"promote by rm", "promote-full by rm", "resume by admin", "abort by rm"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("commands %v, want %v", got, want)
	}
	entries, _ := a.st.ListAudit(context.Background(), 0, 100)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Actor+":"+e.Action)
	}
	for _, want := range []string{"rm:release.promote", "rm:release.promote-full", "admin:release.resume", "rm:release.abort", "viewer:denied"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit log lacks %s: %v", want, actions)
		}
	}
	// A token scoped to billing does not see shop's release.
	if code, _ := a.do(t, "GET", "/api/v1/releases", "billing-token", ""); code != 200 {
		t.Errorf("releases: %d", code)
	}
}

// Alertmanager's webhook aborts the release of the app its firing alert
// names, with the alert as detail; everything else is refused or ignored.
func TestAlertmanagerAbortsTheReleaseItNames(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	run := a.inFlight(t)
	post := func(auth, body string) int {
		req, _ := http.NewRequest("POST", a.url+"/hooks/alertmanager", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	startsAt := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano) // after the release began
	alertAt := func(status, app, at string) string {
		return fmt.Sprintf(`{"version": "4", "status": %q, "receiver": "slipway", "groupLabels": {}, "alerts": [{"status": %q,
			"labels": {"alertname": "HighErrorRate", "app": %q, "severity": "page"}, "annotations": {"summary": "5xx above 5%%"},
			"startsAt": %q, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc"}]}`, status, status, app, at)
	}
	alert := func(status, app string) string { return alertAt(status, app, startsAt) }
	tests := []struct {
		name, auth, body string
		code             int
	}{
		{"no credentials", "", alert("firing", "shop"), 401},
		{"wrong token", "Bearer nope", alert("firing", "shop"), 401},
		{"an API token is not Alertmanager's", "Bearer admin-token", alert("firing", "shop"), 401},
		{"not JSON", "Bearer am-token", "{", 400},
		{"another version", "Bearer am-token", `{"version": "3", "alerts": []}`, 400},
		{"oversized", "Bearer am-token", `{"version": "4", "x": "` + strings.Repeat("a", 2<<20) + `"}`, 413},
		{"resolved alert", "Bearer am-token", alert("resolved", "shop"), 200},
		{"another app", "Bearer am-token", alert("firing", "billing"), 200},
		{"hostile app label", "Bearer am-token", alert("firing", "../shop"), 200},
		{"empty basic credentials", "Basic Og==", alert("firing", "shop"), 401},
		{"firing since before the release began", "Bearer am-token", alertAt("firing", "shop", "2026-01-01T10:00:00Z"), 200},
		{"firing for shop", "Bearer am-token", alert("firing", "shop"), 200},
	}
	for _, tt := range tests {
		if code := post(tt.auth, tt.body); code != tt.code {
			t.Errorf("%s: %d, want %d", tt.name, code, tt.code)
		}
	}
	c, err := a.st.TakeCommand(context.Background(), run, time.Now())
	if err != nil || c == nil || c.Name != "abort" || !strings.Contains(string(c.Detail), `"alertname":"HighErrorRate"`) ||
		!strings.Contains(string(c.Detail), "5xx above 5%") {
		t.Fatalf("command = %+v, %v", c, err)
	}
	if more := a.commands(t, run); len(more) != 0 {
		t.Errorf("only the firing alert for shop aborts; also queued %v", more)
	}
}

// Rollback records come back scoped, filtered and with the measurements.
func TestRollbackHistory(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	run := a.inFlight(t)
	ctx := context.Background()
	min := 99.0
	m := &store.Measurement{RunID: run, Step: 0, Weight: 10, Metric: "success-rate", Query: "q", Value: 71.2, Min: &min, Outcome: "fail", At: time.Now()}
	if err := a.st.AddMeasurement(ctx, m); err != nil {
		t.Fatal(err)
	}
	rb := &store.Rollback{RunID: run, App: "shop", Rollback: release.Rollback{Trigger: "analysis", Reason: "success-rate failed", Weight: 10,
		DetectedAt: time.Now().Add(-time.Minute), RestoredAt: time.Now()}}
	if err := a.st.AddRollback(ctx, rb); err != nil {
		t.Fatal(err)
	}
	req := func(path, tok string) (int, string) {
		r, _ := http.NewRequest("GET", a.url+path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path, token string
		code        int
		has         string
	}{
		{"/api/v1/rollbacks", "view-token", 200, `"reason": "success-rate failed"`},
		{"/api/v1/rollbacks?app=shop&since=1h", "view-token", 200, `"trigger": "analysis"`},
		{"/api/v1/rollbacks?since=1s", "view-token", 200, `[]`},
		{"/api/v1/rollbacks", "billing-token", 200, `[]`},
		{fmt.Sprintf("/api/v1/rollbacks/%d", rb.ID), "view-token", 200, `"metric": "success-rate"`},
		{fmt.Sprintf("/api/v1/rollbacks/%d", rb.ID), "billing-token", 404, "not found"},
		{"/api/v1/rollbacks/999", "view-token", 404, "not found"},
		{"/api/v1/rollbacks/-1", "view-token", 400, "positive"},
		{"/api/v1/rollbacks?since=yesterday", "view-token", 400, "duration"},
		{"/api/v1/rollbacks?limit=100000", "view-token", 400, "limit"},
		{"/api/v1/rollbacks?app=a%20b", "view-token", 400, "app name"},
	} {
		code, body := req(tt.path, tt.token)
		if code != tt.code || !strings.Contains(body, tt.has) {
			t.Errorf("GET %s as %s: %d %.300s; want %d with %q", tt.path, tt.token, code, body, tt.code, tt.has)
		}
	}
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `slipway_rollbacks_total{app="shop",trigger="analysis"} 1`; !strings.Contains(string(b), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
