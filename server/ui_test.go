package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/api"
	"github.com/slipwayci/slipway/server/auth"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each 303.
type browser struct {
	t   *testing.T
	a   *apiTest
	c   *http.Client
	tok string // bearer token, when not logged in through the form
}

func (a *apiTest) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, a: a, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, *html.Node, http.Header) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.a.url+path, nil)
	if b.tok != "" {
		req.Header.Set("Authorization", "Bearer "+b.tok)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := html.Parse(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, doc, resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.a.url+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// login logs in through the login form with token, as a person would.
func (b *browser) login(token string) {
	b.t.Helper()
	_, doc, _ := b.get("/login")
	code, loc, body := b.post("/login", url.Values{"csrf": {attr(find(doc, "input", "name", "csrf"), "value")}, "token": {token}, "next": {"/"}})
	if code != 303 || loc != "/" {
		b.t.Fatalf("login: %d %s %s", code, loc, body)
	}
}

// csrf is the CSRF token the logged-in pages carry.
func (b *browser) csrf() string {
	_, doc, _ := b.get("/")
	return attr(find(doc, "input", "name", "csrf"), "value")
}

// find returns the first element named tag with attribute key=val ("" for any).
func find(n *html.Node, tag, key, val string) *html.Node {
	var out []*html.Node
	walk(n, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag && (key == "" || attr(n, key) == val) {
			out = append(out, n)
		}
	})
	if len(out) == 0 {
		return nil
	}
	return out[0]
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(n, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	})
	return out
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	walk(n, func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data + " ")
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func ptr(v float64) *float64 { return &v }

// seedRelease gives the in-flight run a canary's progress, measurements
// (one of them NaN) and, when rolledBack, a rollback record.
func (a *apiTest) seedRelease(t testing.TB, run int64, state release.State) {
	t.Helper()
	ctx := context.Background()
	r, err := a.st.GetRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	live := 25
	data, _ := json.Marshal(release.Progress{Image: "registry.local/shop:v2", Digest: "sha256:" + strings.Repeat("ab", 32),
		Steps:         []release.PlannedStep{{Weight: 10, Interval: "2s"}, {Weight: 25, Interval: "2s"}, {Pause: "until promoted"}},
		StepStartedAt: time.Now().Add(-90 * time.Second), LiveWeight: &live, LiveAt: time.Now()})
	if err := a.st.SaveRelease(ctx, &store.Release{RunID: run, App: r.App, Checkpoint: release.Checkpoint{State: state, Step: 1, Weight: 25, Reason: "step 2: 25%", Data: data}, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute)
	for i, v := range []float64{99.5, 99.1, 72.72727272727273, math.NaN(), 71.2} {
		outcome := map[bool]string{true: "pass", false: "fail"}[v >= 99]
		if math.IsNaN(v) {
			v, outcome = 0, "error" // as the canary stores a query that failed
		}
		m := &store.Measurement{RunID: run, Step: i / 3, Weight: 10 + 15*(i/3), Metric: "success-rate", Query: `sum(rate(http_requests_total{code!~"5.."}[2s]))`,
			Value: v, Min: ptr(99), Requests: 40, Outcome: outcome, At: t0.Add(time.Duration(i) * 5 * time.Second)}
		if err := a.st.AddMeasurement(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// A metric in dry run that failed: charted and explained, deciding nothing.
	dry := &store.Measurement{RunID: run, Step: 1, Weight: 25, Metric: "new-latency", Query: "histogram_quantile(0.99, …)", Value: 740, Max: ptr(250),
		Requests: 40, Outcome: "fail", Message: release.DryRunNote + "; 740 > max 250", At: t0.Add(30 * time.Second)}
	if err := a.st.AddMeasurement(ctx, dry); err != nil {
		t.Fatal(err)
	}
}

// Every page renders for a viewer with the numbers the store holds, and
// a viewer's release buttons are disabled with the reason.
func TestPagesShowTheStore(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	run := a.inFlight(t)
	a.seedRelease(t, run, "paused")
	ms, _ := a.st.ListMeasurements(context.Background(), run)
	ev := release.RollbackEvidence{Detail: release.RollbackDetail{Measurements: []release.Measurement{
		{ID: ms[2].ID, Metric: "success-rate", Value: ms[2].Value, Outcome: "fail", Message: "72.7 < min 99"},
		{ID: ms[4].ID, Metric: "success-rate", Value: ms[4].Value, Outcome: "fail", Message: "71.2 < min 99"}}, FailureLimit: 1},
		Timings: release.RollbackTimings{DetectedAt: time.Now().Add(-4 * time.Second), DecidedAt: time.Now().Add(-3900 * time.Millisecond),
			PushedAt: time.Now().Add(-3 * time.Second), RestoredAt: time.Now()}}
	rb := &store.Rollback{RunID: run, App: "slow", Rollback: release.Rollback{Trigger: "analysis", Reason: "success-rate below min", Weight: 25, Evidence: ev,
		ReleaseCommit: "1111111", RollbackCommit: "2222222", DetectedAt: time.Now().Add(-4 * time.Second), RestoredAt: time.Now()}}
	if err := a.st.AddRollback(context.Background(), rb); err != nil {
		t.Fatal(err)
	}
	b := a.browser(t)
	b.tok = "view-token"

	_, home, _ := b.get("/")
	if got := text(find(home, "section", "id", "waiting")); !strings.Contains(got, "slow") || !strings.Contains(got, "25 %") {
		t.Errorf("home's waiting section = %q, want the paused release of slow at 25 %%", got)
	}

	code, rel, hdr := b.get(fmt.Sprintf("/releases/%d", run))
	if code != 200 || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("release page: %d, CSP %q", code, hdr.Get("Content-Security-Policy"))
	}
	if got := text(find(rel, "span", "id", "release-weight")); !strings.Contains(got, "configured 25 %") || !strings.Contains(got, "live 25 %") {
		t.Errorf("weights = %q", got)
	}
	if cur := text(find(rel, "li", "aria-current", "step")); !strings.Contains(cur, "25 % for 2s") {
		t.Errorf("current step = %q", cur)
	}
	svg := find(rel, "svg", "class", "chart")
	if attr(svg, "data-points") != "5" || find(svg, "g", "class", "threshold min") == nil || len(findAll(svg, "title")) != 6 {
		t.Errorf("chart: %d points, threshold %v", len(findAll(svg, "title"))-1, find(svg, "g", "class", "threshold min") != nil)
	}
	rows := findAll(find(rel, "tbody", "", ""), "tr")
	if len(rows) != 5 || !strings.Contains(text(rows[2]), "72.7") || strings.Contains(text(rows[2]), "72.72") || !strings.Contains(text(rows[3]), "error") {
		t.Errorf("measurement rows = %d; third %q; fourth %q", len(rows), text(rows[2]), text(rows[3]))
	}
	var dryRun *html.Node
	for _, h := range findAll(rel, "h3") {
		if strings.HasPrefix(text(h), "new-latency") {
			dryRun = h
		}
	}
	if got := text(dryRun); dryRun == nil || !strings.Contains(got, "dry run") || !strings.Contains(text(dryRun.Parent), "In dry run: its measurements never roll back") ||
		!strings.Contains(text(dryRun.Parent), release.DryRunNote+"; 740 > max 250") {
		t.Errorf("the metric in dry run: heading %q", got)
	}
	actions := text(find(rel, "div", "class", "actions"))
	if len(findAll(find(rel, "div", "class", "actions"), "a")) != 0 || !strings.Contains(actions, "needs the release-manager role; viewer has viewer") {
		t.Errorf("a viewer's actions = %q, want disabled buttons with the reason", actions)
	}

	_, rbPage, _ := b.get(fmt.Sprintf("/rollbacks/%d", rb.ID))
	if got := text(find(rbPage, "p", "class", "lead")); !strings.Contains(got, "success-rate 71.2 < min 99 at 25% weight") {
		t.Errorf("rollback summary = %q", got)
	}
	if n := len(findAll(find(rbPage, "svg", "class", "chart"), "circle")); n < 2 {
		t.Errorf("rollback chart has %d circles, want the deciding points ringed", n)
	}
	if got := len(findAll(rbPage, "tr")); got < 6 {
		t.Errorf("rollback page has %d table rows", got)
	}
	if find(rbPage, "svg", "class", "timing-bar") == nil {
		t.Error("rollback page has no timing bar")
	}

	_, list, _ := b.get("/rollbacks")
	if got := text(find(list, "tbody", "", "")); !strings.Contains(got, "slow") || !strings.Contains(got, "success-rate 71.2 < min 99") {
		t.Errorf("rollbacks list = %q", got)
	}
	for _, p := range []string{fmt.Sprintf("/runs/%d", run), "/deliveries"} {
		if code, doc, _ := b.get(p); code != 200 || find(doc, "h1", "", "") == nil {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	if _, doc, _ := b.get(fmt.Sprintf("/runs/%d", run)); !strings.HasPrefix(text(find(doc, "dd", "id", "pipeline-source")), "the operator's ") {
		t.Errorf("the run page does not say where its pipeline was read: %q", text(find(doc, "dd", "id", "pipeline-source")))
	}
	if code, _, _ := b.get("/audit"); code != 403 {
		t.Errorf("a viewer's /audit: %d, want 403", code)
	}
	b.tok = "admin-token"
	if code, doc, _ := b.get("/audit"); code != 200 || !strings.Contains(text(find(doc, "tbody", "", "")), "run.trigger") {
		t.Errorf("an admin's /audit: %d", code)
	}
	b.tok = "view-token"
	if code, _, _ := b.get("/runs/999"); code != 404 {
		t.Errorf("/runs/999: %d, want 404", code)
	}
	b.tok = "billing-token"
	if code, _, _ := b.get(fmt.Sprintf("/releases/%d", run)); code != 404 {
		t.Errorf("billing viewer on slow's release: %d, want 404", code)
	}
}

// Logging in exchanges a token for a session cookie; state changes need
// the session's CSRF token; a viewer's session cannot promote; logout ends it.
func TestSessionsAndCSRF(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	run := a.inFlight(t)
	a.seedRelease(t, run, "paused")

	anon := a.browser(t)
	if code, _, h := anon.get("/"); code != 303 || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Errorf("anonymous home: %d → %s", code, h.Get("Location"))
	}
	if code, _, body := anon.post("/login", url.Values{"csrf": {"forged"}, "token": {"rm-token"}}); code != 403 {
		t.Errorf("login without the form's CSRF cookie: %d %.80s", code, body)
	}
	_, doc, _ := anon.get("/login")
	if code, _, _ := anon.post("/login", url.Values{"csrf": {attr(find(doc, "input", "name", "csrf"), "value")}, "token": {"wrong"}}); code != 401 {
		t.Errorf("login with a wrong token: %d", code)
	}

	rm := a.browser(t)
	rm.login("rm-token")
	u, _ := url.Parse(a.url)
	var cookie *http.Cookie
	for _, c := range rm.c.Jar.Cookies(u) {
		if c.Name == auth.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie after login")
	}
	promote := fmt.Sprintf("/releases/%d/promote", run)
	if code, _, body := rm.post(promote, url.Values{}); code != 403 || !strings.Contains(body, "CSRF") {
		t.Errorf("promote without the CSRF token: %d %.200s", code, body)
	}
	// The JSON API refuses a session without the header, too.
	req, _ := http.NewRequest("POST", a.url+"/api/v1/apps/shop/pause", nil)
	resp, err := rm.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("API call from a session without X-CSRF-Token: %d", resp.StatusCode)
	}
	csrf := rm.csrf()
	if code, loc, body := rm.post(promote, url.Values{"csrf": {csrf}}); code != 303 || loc != fmt.Sprintf("/releases/%d?sent=promote", run) {
		t.Errorf("promote with CSRF: %d %s %.200s", code, loc, body)
	}
	if got := a.commands(t, run); len(got) != 1 || got[0] != "promote by rm" {
		t.Errorf("commands = %v, want promote by rm", got)
	}
	if code, _, body := rm.post(fmt.Sprintf("/releases/%d/abort", run), url.Values{"csrf": {csrf}, "reason": {"p99 up"}}); code != 303 {
		t.Errorf("abort: %d %.200s", code, body)
	}
	entries, _ := a.st.ListAudit(context.Background(), 0, 10)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Actor+" "+e.Action)
	}
	if !strings.Contains(strings.Join(actions, ","), "rm release.abort") || !strings.Contains(strings.Join(actions, ","), "rm ui.login") {
		t.Errorf("audit = %v", actions)
	}

	viewer := a.browser(t)
	viewer.login("view-token")
	if code, _, body := viewer.post(promote, url.Values{"csrf": {viewer.csrf()}}); code != 403 || !strings.Contains(body, "has role viewer") {
		t.Errorf("a viewer's promote: %d %.200s", code, body)
	}
	if code, _, _ := viewer.get(promote); code != 403 {
		t.Errorf("a viewer's promote confirm page: %d, want 403", code)
	}

	// An unknown or expired session is no session.
	a2 := a.browser(t)
	a2.c.Jar.SetCookies(u, []*http.Cookie{{Name: auth.SessionCookie, Value: "not-a-session", Path: "/"}})
	if code, _, _ := a2.get("/"); code != 303 {
		t.Errorf("unknown session: %d, want a redirect to login", code)
	}
	rm.a = a
	if code, loc, _ := rm.post("/logout", url.Values{"csrf": {csrf}}); code != 303 || loc != "/login" {
		t.Errorf("logout: %d %s", code, loc)
	}
	if code, _, _ := rm.get("/"); code != 303 {
		t.Errorf("home after logout: %d, want a redirect to login", code)
	}
}

// The live stream: framed events with ids, resume from Last-Event-ID, a
// heartbeat, and a bound per session.
func TestEventStream(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	code, out := a.do(t, "POST", "/api/v1/pipelines/shop/runs", "rm-token", "")
	if code != 201 {
		t.Fatalf("trigger: %d %v", code, out)
	}
	id := int64(out["id"].(float64))
	a.waitRun(t, float64(id), "succeeded")

	open := func(lastID string) (*http.Response, *bufio.Reader) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/ui/events?run=%d", a.url, id), nil)
		req.Header.Set("Authorization", "Bearer view-token")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp, bufio.NewReader(resp.Body)
	}
	event := func(r *bufio.Reader) map[string]string {
		ev := map[string]string{}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "" && len(ev) > 0 {
				return ev
			}
			if k, v, ok := strings.Cut(line, ": "); ok {
				ev[k] = v
			}
		}
	}
	resp, r := open("")
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	if ev := event(r); ev["retry"] != "2000" {
		t.Errorf("first frame = %v, want the retry hint", ev)
	}
	first := event(r)
	if first["event"] != "log" || first["id"] == "" || !strings.Contains(first["data"], "hello small") {
		t.Errorf("first event = %v", first)
	}
	last := first
	for last["event"] == "log" {
		ev := event(r)
		if ev["event"] == "changed" {
			if ev["id"] != last["id"] {
				t.Errorf("after the last line: %v, want changed with the last line's id %s", ev, last["id"])
			}
			break
		}
		last = ev
	}
	_, r2 := open(last["id"])
	event(r2)
	if ev := event(r2); ev["event"] == "log" {
		t.Errorf("a stream resumed after the last line %v sent it again: %v", last, ev)
	}
	resp.Body.Close()

	// An idle stream sends a heartbeat comment.
	a.srv.API().SetHeartbeat(50 * time.Millisecond)
	_, r3 := open(last["id"])
	for seen := 0; seen < 2; {
		line, err := r3.ReadString('\n')
		if err != nil {
			t.Fatalf("reading an idle stream: %v", err)
		}
		if line == ": heartbeat\n" {
			seen++
		}
	}

	if n := api.MaxStreamsPerSession; n > 0 {
		b := a.browser(t)
		b.login("view-token")
		if codes := b.openStreams(t, a.url, n+1); codes[n-1] != 200 || codes[n] != 429 {
			t.Errorf("stream codes = %v, want %d × 200 then 429", codes, n)
		}
	}
	// Sessions are free to make: the streams of all of one token's
	// sessions are bounded too.
	var codes []int
	for len(codes) <= api.MaxStreamsPerToken {
		b := a.browser(t)
		b.login("rm-token")
		codes = append(codes, b.openStreams(t, a.url, api.MaxStreamsPerSession)...)
	}
	if codes[api.MaxStreamsPerToken-1] != 200 || codes[api.MaxStreamsPerToken] != 429 {
		t.Errorf("streams over several sessions of one token: %v, want %d × 200 then 429", codes, api.MaxStreamsPerToken)
	}
}

// Hostile and malformed input to the UI's endpoints is refused with a
// clear answer and changes nothing.
func TestUIRefusesBadInput(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	run := a.inFlight(t)
	b := a.browser(t)
	_, doc, _ := b.get("/login")
	csrf := attr(find(doc, "input", "name", "csrf"), "value")
	// Browsers drop tabs and newlines and read "\\" as "/": each of these
	// is //evil.example to them.
	for _, next := range []string{"//evil.example/x", "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "/x/../\\/evil.example", "/\x7f/evil.example"} {
		if code, loc, _ := b.post("/login", url.Values{"csrf": {csrf}, "token": {"rm-token"}, "next": {next}}); code != 303 || loc != "/" {
			t.Errorf("login with next=%q: %d → %q, want a redirect to /", next, code, loc)
		}
		_, doc, _ = b.get("/login")
		csrf = attr(find(doc, "input", "name", "csrf"), "value")
	}
	if code, loc, _ := b.post("/login", url.Values{"csrf": {csrf}, "token": {"rm-token"}, "next": {"/runs?app=shop"}}); code != 303 || loc != "/runs?app=shop" {
		t.Errorf("login with a local next: %d → %q, want a redirect to it", code, loc)
	}
	_, doc, _ = b.get("/login")
	csrf = attr(find(doc, "input", "name", "csrf"), "value")
	if code, _, _ := b.post("/login", url.Values{"csrf": {csrf}, "token": {strings.Repeat("x", 20<<10)}}); code != 400 {
		t.Errorf("a 20 KiB login form: %d, want 400", code)
	}
	b.tok = "rm-token"
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/runs/abc", 400}, {"/runs/-1", 400}, {fmt.Sprintf("/runs/%d?before=x", run), 400}, {"/releases/99999", 404},
		{"/rollbacks/0", 400}, {"/rollbacks/99999", 404}, {"/apps/..%2f..", 404}, {"/audit?before=-5", 403},
		{"/ui/events?run=abc", 400}, {"/ui/events?release=0", 400}, {"/ui/events?run=99999", 404},
		{fmt.Sprintf("/api/v1/runs/%d/artifacts/x/y", run), 400}, {fmt.Sprintf("/api/v1/runs/%d/artifacts/0/nothing", run), 404},
		{"/ui/static/000000000000/nothing.js", 404},
	} {
		if code, _, _ := b.get(tt.path); code != tt.code {
			t.Errorf("GET %s: %d, want %d", tt.path, code, tt.code)
		}
	}
	req, _ := http.NewRequest("GET", a.url+"/ui/events", nil)
	req.Header.Set("Authorization", "Bearer rm-token")
	req.Header.Set("Last-Event-ID", "not-a-number")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("Last-Event-ID not-a-number: %v %v", err, resp)
	}
	if got := a.commands(t, run); len(got) != 0 {
		t.Errorf("bad input queued commands: %v", got)
	}
}

// The run page shows the scan's report as a table, worst first, with
// links to the report and the SBOM; a report's link that is not http(s)
// is not a link.
func TestRunPageShowsTheScanReport(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	run := a.inFlight(t)
	report := `{"Results": [{"Target": "app (debian 12)", "Vulnerabilities": [
		{"VulnerabilityID": "CVE-2024-1", "PkgName": "libfoo", "InstalledVersion": "1.0", "FixedVersion": "1.1", "Severity": "LOW", "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2024-1"},
		{"VulnerabilityID": "CVE-2021-38561", "PkgName": "golang.org/x/text", "InstalledVersion": "v0.3.6", "FixedVersion": "0.3.7", "Severity": "HIGH", "PrimaryURL": "javascript:alert(1)"}]}]}`
	ctx := context.Background()
	for _, art := range []store.Artifact{{RunID: run, Index: 0, Attempt: 1, Name: "trivy-report.json", Subject: "sha256:abc", Data: []byte(report)},
		{RunID: run, Index: 0, Attempt: 1, Name: "sbom.cdx.json", Subject: "sha256:abc", Data: []byte(`{"bomFormat": "CycloneDX"}`)}} {
		if err := a.st.PutArtifact(ctx, art); err != nil {
			t.Fatal(err)
		}
	}
	b := a.browser(t)
	b.tok = "view-token"
	_, doc, _ := b.get(fmt.Sprintf("/runs/%d", run))
	scan := find(doc, "section", "id", "scan")
	rows := findAll(find(scan, "tbody", "", ""), "tr")
	if len(rows) != 2 || !strings.HasPrefix(text(rows[0]), "HIGH golang.org/x/text v0.3.6 0.3.7 CVE-2021-38561") || !strings.HasPrefix(text(rows[1]), "LOW libfoo") {
		t.Fatalf("scan rows: %d; %q", len(rows), text(scan))
	}
	if find(rows[0], "a", "", "") != nil || attr(find(rows[1], "a", "", ""), "href") != "https://avd.aquasec.com/nvd/cve-2024-1" {
		t.Errorf("vulnerability links: a javascript: URL must not be a link; an https one must")
	}
	var links []string
	for _, l := range findAll(scan, "a") {
		if strings.Contains(attr(l, "href"), "/artifacts/") {
			links = append(links, attr(l, "href"))
		}
	}
	if len(links) != 2 {
		t.Fatalf("downloads = %v", links)
	}
	for _, l := range links {
		req, _ := http.NewRequest("GET", a.url+l, nil)
		req.Header.Set("Authorization", "Bearer view-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("GET %s: %v %v", l, err, resp)
		}
		resp.Body.Close()
	}
}

// openStreams opens n live streams in the browser's session, held open
// until the test ends, and returns the answers' codes.
func (b *browser) openStreams(t *testing.T, base string, n int) []int {
	t.Helper()
	var codes []int
	for range n {
		req, _ := http.NewRequest("GET", base+"/ui/events", nil)
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		codes = append(codes, resp.StatusCode)
	}
	return codes
}
