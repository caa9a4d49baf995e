package integration

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/web"
	"github.com/slipwayci/slipway/stages/tools"
)

// needBrowser returns Debian's headless Chromium and the pinned axe-core
// script (make tools installs both).
func needBrowser(t testing.TB) (chrome, axe string) {
	t.Helper()
	// Debian's /usr/bin/chromium-headless-shell is a shell script that runs
	// this binary as its child: started through it, the browser would
	// outlive the test (only the script is killed).
	chrome = "/usr/lib/chromium/chromium-headless-shell"
	_, err := os.Stat(chrome)
	need(t, err == nil, chrome+" (Debian's chromium-headless-shell; make tools)")
	env, err := os.ReadFile("../scripts/browser.env")
	must(t, err)
	m := regexp.MustCompile(`(?m)^AXE_CORE_VERSION=(\S+)$`).FindSubmatch(env)
	if m == nil {
		t.Fatal("scripts/browser.env names no AXE_CORE_VERSION")
	}
	axe = filepath.Join(tools.Dir(), "axe-core-"+string(m[1]), "axe.min.js")
	_, err = os.Stat(axe)
	need(t, err == nil, "axe-core "+string(m[1])+" (make tools)")
	return chrome, axe
}

// newTab starts a headless Chromium of its own (a fresh profile, so its
// own cookies) and returns a context for driving its first tab.
func newTab(t testing.TB, chrome string) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "slipway-chromium-")
	must(t, err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.UserDataDir(profile), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	must(t, chromedp.Run(ctx, page.SetBypassCSP(true))) // for axe's injection only; the pages' own CSP is tested in server
	proc := chromedp.FromContext(ctx).Browser.Process()
	t.Cleanup(func() { // runs first: closes the browser, then checks it is gone
		cancelC()
		cancelA()
		if err := proc.Signal(syscall.Signal(0)); err == nil {
			t.Errorf("the browser (pid %d) outlived its test", proc.Pid)
			proc.Kill()
		}
		// Its helper processes end a moment after it, writing to the profile until then.
		err := eventually.Within(10*time.Second, func() bool { return os.RemoveAll(profile) == nil })
		if err != nil {
			t.Errorf("removing the browser's profile %s: %v", profile, err)
		}
	})
	return ctx
}

// run does browser actions with a bound, failing the test with what was
// being done.
func run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// login logs the tab in as make demo's link does: the link fills the
// token in, and a click on "Log in" — never the page by itself — submits it.
func login(t testing.TB, ctx context.Context, base, token string) {
	t.Helper()
	var value, where string
	run(t, ctx, "opening the login link of "+token, chromedp.Navigate(base+"/login#token="+url.PathEscape(token)), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.Value("#token", &value, chromedp.ByID), chromedp.Evaluate(`location.pathname + location.hash`, &where))
	if value != token || where != "/login" {
		t.Fatalf("the login link left the field %q at %q; want the token filled in, on /login, the fragment gone, nothing submitted", value, where)
	}
	run(t, ctx, "logging in as "+token, chromedp.Click(`button[type="submit"]`, chromedp.ByQuery), chromedp.WaitVisible("header .who", chromedp.ByQuery))
}

// checkAccessibility runs axe-core on the page and fails on any WCAG 2 A
// or AA violation.
func checkAccessibility(t testing.TB, ctx context.Context, axe, where string) {
	t.Helper()
	src, err := os.ReadFile(axe)
	must(t, err)
	var violations []struct {
		ID, Help string
		Nodes    []struct{ Target []string }
	}
	run(t, ctx, "running axe on "+where, chromedp.Evaluate(string(src), nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}).then(r => r.violations)`,
			&violations, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	for _, v := range violations {
		var targets []string
		for _, n := range v.Nodes {
			targets = append(targets, strings.Join(n.Target, " "))
		}
		t.Errorf("accessibility on %s: %s (%s) at %s", where, v.ID, v.Help, strings.Join(targets, "; "))
	}
}

// textOf reads the text of the first element matching sel.
func textOf(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	run(t, ctx, "reading "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// screenshot saves the page as name.png in $SLIPWAY_SCREENSHOTS, when
// set (make screenshots): the README's pictures, taken from the real thing.
func screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SLIPWAY_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	run(t, ctx, "taking a screenshot", chromedp.FullScreenshot(&png, 100))
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	var v T
	run(t, ctx, "evaluating "+expr, chromedp.Evaluate(expr, &v))
	return v
}

// A release manager and a viewer in a real browser, against a real
// `slipway serve` releasing through the local environment: log in, watch
// a run's log arrive live, promote at a manual gate through the confirm
// dialog (the viewer's buttons disabled, with the reason), abort the next
// release with a reason and read its rollback page — the chart drawn, its
// table equal to the store. Every page passes axe-core.
func TestBrowserPromoteAbortAndExplain(t *testing.T) {
	onNode(t)
	chrome, axe := needBrowser(t)
	e := newReleaseEnv(t)
	e.steadyLoad(t, 40)
	c := startControl(t, e)
	base := c.eng.url

	rm := newTab(t, chrome)
	login(t, rm, base, "rm-token")
	checkAccessibility(t, rm, axe, "the home page")

	// The run's log arrives live while the tab watches.
	run1 := c.trigger(t, pushDemoImage(t, e.reg, "shop/order-service:v2", "v2", 0, 0))
	run(t, rm, "opening the run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", base, run1)), chromedp.WaitVisible("#log-h", chromedp.ByID))
	first := eval[int](t, rm, `document.querySelectorAll("#log li").length`)
	err := eventually.Within(time.Minute, func() bool {
		return eval[int](t, rm, `document.querySelectorAll("#log li").length`) > first+5 && eval[string](t, rm, `document.getElementById("live").textContent`) == "live"
	})
	if err != nil {
		t.Errorf("the run page's log did not grow live from %d lines: %v", first, err)
	}
	checkAccessibility(t, rm, axe, "the run page")

	// At the manual gate: the viewer's buttons are disabled with the reason.
	c.waitRelease(t, "paused", "promotion: manual")
	release1 := fmt.Sprintf("%s/releases/%d", base, run1)
	viewer := newTab(t, chrome)
	login(t, viewer, base, "view-token")
	run(t, viewer, "opening the release page", chromedp.Navigate(release1), chromedp.WaitVisible("#release", chromedp.ByID))
	if n := eval[int](t, viewer, `document.querySelectorAll(".actions button[disabled]").length`); n != 5 ||
		eval[int](t, viewer, `document.querySelectorAll(".actions a").length`) != 0 ||
		!strings.Contains(textOf(t, viewer, ".actions"), "needs the release-manager role; viewer has viewer") {
		t.Errorf("a viewer sees %d disabled buttons: %q", n, textOf(t, viewer, ".actions"))
	}

	// The release manager promotes through the confirm dialog.
	run(t, rm, "opening the release page", chromedp.Navigate(release1), chromedp.WaitVisible("#release", chromedp.ByID))
	if w := textOf(t, rm, "#release-weight"); !strings.Contains(w, "configured 50 %") || !strings.Contains(w, "live 50 %") {
		t.Errorf("release weights = %q, want configured and live 50 %%", w)
	}
	checkAccessibility(t, rm, axe, "the release page")
	screenshot(t, rm, "release")
	run(t, rm, "pressing Promote", chromedp.Click(`.actions a[href$="/promote"]`, chromedp.ByQuery), chromedp.WaitVisible("dialog[open] #confirm", chromedp.ByQuery))
	if d := textOf(t, rm, "dialog[open]"); !strings.Contains(d, "order-service") || !strings.Contains(d, "sha256:") || !strings.Contains(d, "50 %") {
		t.Errorf("the confirm dialog = %q, want the app, digest and weight", d)
	}
	checkAccessibility(t, rm, axe, "the promote dialog")
	run(t, rm, "confirming", chromedp.Click(`dialog[open] button[type="submit"]`, chromedp.ByQuery), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	c.waitRun(t, run1, "succeeded")
	// The live page replaces the element as it updates: a read that
	// finds it gone is tried again.
	err = eventually.Within(30*time.Second, func() bool {
		var s string
		return chromedp.Run(rm, chromedp.Text("#release-state", &s, chromedp.ByQuery)) == nil && strings.Contains(s, "promoted")
	})
	if err != nil {
		t.Errorf("the release page never showed promoted (live): %q", textOf(t, rm, "#release-state"))
	}

	// The next release is aborted with a reason; its rollback page explains it.
	run2 := c.trigger(t, pushDemoImage(t, e.reg, "shop/order-service:v5", "v5", 0, 0))
	c.waitRelease(t, "paused", "promotion: manual")
	run(t, rm, "aborting", chromedp.Navigate(fmt.Sprintf("%s/releases/%d", base, run2)), chromedp.WaitVisible("#release", chromedp.ByID),
		chromedp.Click(`.actions a[href$="/abort"]`, chromedp.ByQuery), chromedp.WaitVisible("dialog[open] #reason", chromedp.ByQuery),
		chromedp.SendKeys("dialog[open] #reason", "checkout looks slow", chromedp.ByQuery),
		chromedp.Click(`dialog[open] button[type="submit"]`, chromedp.ByQuery), chromedp.WaitVisible(".flash", chromedp.ByQuery))
	c.waitRun(t, run2, "failed")
	st := openStore(t, filepath.Join(e.dir, "data"))
	rbs, err := st.ListRollbacks(context.Background(), store.RollbackFilter{})
	must(t, err)
	ms, err := st.ListMeasurements(context.Background(), run2)
	must(t, err)
	st.Close()
	if len(rbs) != 1 || len(ms) == 0 {
		t.Fatalf("%d rollbacks, %d measurements of run %d", len(rbs), len(ms), run2)
	}
	run(t, rm, "opening the rollback page", chromedp.Navigate(fmt.Sprintf("%s/rollbacks/%d", base, rbs[0].ID)), chromedp.WaitVisible(".explain", chromedp.ByQuery))
	if got := textOf(t, rm, ".explain"); !strings.Contains(got, "checkout looks slow") || !strings.Contains(got, "aborted by rm") {
		t.Errorf("the rollback's explanation = %q", got)
	}
	if n := eval[int](t, rm, `document.querySelector("svg.chart").querySelectorAll("g.m").length`); n != len(ms) {
		t.Errorf("the chart draws %d points, the store has %d measurements", n, len(ms))
	}
	cells := eval[[]string](t, rm, `[...document.querySelectorAll(".metric tbody tr")].map(r => r.cells[3].textContent)`)
	var want []string
	for _, m := range ms {
		want = append(want, web.Number(m.Value))
	}
	if strings.Join(cells, " ") != strings.Join(want, " ") {
		t.Errorf("the table's values %v, the store's %v", cells, want)
	}
	checkAccessibility(t, rm, axe, "the rollback page")
	screenshot(t, rm, "rollback")
}
