package triggers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/kinds/fake"
)

func TestGitHubSignatureTestVector(t *testing.T) {
	t.Parallel()
	// From GitHub's documentation on validating webhook deliveries.
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if !Verify(GitHub{}, h, []byte("Hello, World!"), "It's a Secret to Everybody") {
		t.Fatal("GitHub's documented test vector does not verify")
	}
	if Verify(GitHub{}, h, []byte("Hello, World?"), "It's a Secret to Everybody") {
		t.Fatal("a changed body verified")
	}
	h.Set("X-Hub-Signature-256", "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if Verify(GitHub{}, h, []byte("Hello, World!"), "It's a Secret to Everybody") {
		t.Fatal("a signature without the sha256= prefix verified")
	}
}

func TestNormalizeRepoURL(t *testing.T) {
	t.Parallel()
	want := "github.com/codertocat/hello-world"
	for _, u := range []string{
		"https://github.com/Codertocat/Hello-World.git", "https://GitHub.com/codertocat/hello-world/",
		"git@github.com:Codertocat/Hello-World.git", "ssh://git@github.com/Codertocat/Hello-World",
		"https://user:token@github.com/Codertocat/Hello-World", "git://github.com/Codertocat/Hello-World.git",
		"github.com:Codertocat/Hello-World.git", "ssh://git@github.com:2222/Codertocat/Hello-World.git",
	} {
		if got := NormalizeRepoURL(u); got != strings.ToLower(want) {
			t.Errorf("NormalizeRepoURL(%q) = %q, want %q", u, got, want)
		}
	}
}

type intakeTest struct {
	in     *Intake
	st     store.Store
	mu     sync.Mutex
	counts map[string]int
}

func filePipeline(t *testing.T, name, on string) Source {
	t.Helper()
	src := "apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata: {name: " + name + "}\non: " + on + "\nstages:\n  - {name: a, fake: {}}\n"
	p, err := pipeline.Parse(name+".yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return FileSource{P: p}
}

// newRunner opens the store at path (a SQLite file, or a postgres:// URL)
// and a runner over it with the fake kind.
func newRunner(t *testing.T, path string) (store.Store, *runner.Runner) {
	t.Helper()
	var (
		st  *sqlstore.Store
		err error
	)
	if strings.HasPrefix(path, "postgres://") {
		st, err = sqlstore.OpenPostgres(context.Background(), path, "")
	} else {
		st, err = sqlstore.OpenSQLite(context.Background(), path)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kinds := stages.NewRegistry()
	kinds.Register("fake", fake.New(nil))
	r, err := runner.New(st, kinds)
	if err != nil {
		t.Fatal(err)
	}
	return st, r
}

func newIntakeTest(t *testing.T, extra ...*Repo) *intakeTest {
	t.Helper()
	st, r := newRunner(t, filepath.Join(t.TempDir(), "s.db"))
	var err error
	repos := append([]*Repo{
		{Config: engineconfig.Repository{Name: "hello", URL: "https://github.com/Codertocat/Hello-World.git", Forge: "github"}, Secret: "gh-secret",
			Sources: []Source{
				filePipeline(t, "order", `{push: {branches: [main], paths: ["services/order/**"]}}`),
				filePipeline(t, "docs", `{push: {branches: [main], paths: ["docs/**"]}}`),
			}},
		{Config: engineconfig.Repository{Name: "diaspora", URL: "git@example.com:mike/diaspora.git", Forge: "gitlab"}, Secret: "gl-token",
			Sources: []Source{filePipeline(t, "diaspora", `{push: {branches: [main], tags: ["v*"]}}`)}},
		{Config: engineconfig.Repository{Name: "webhooks", URL: "http://localhost:3000/gitea/webhooks", Forge: "gitea"}, Secret: "gt-secret",
			Sources: []Source{filePipeline(t, "gitea-ci", `{push: {branches: [develop]}}`)}},
	}, extra...)
	it := &intakeTest{st: st, counts: map[string]int{}}
	it.in, err = NewIntake(repos, st, r, WithMaxBody(64<<10), WithCounter(func(forge, result string) {
		it.mu.Lock()
		it.counts[forge+"/"+result]++
		it.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// delivery is one signed request.
type delivery struct {
	forge, event, id, secret string
	body                     []byte
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (d delivery) request() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/"+d.forge, bytes.NewReader(d.body))
	r.Header.Set("Content-Type", "application/json")
	switch d.forge {
	case "github":
		r.Header.Set("X-GitHub-Event", d.event)
		r.Header.Set("X-GitHub-Delivery", d.id)
		r.Header.Set("X-Hub-Signature-256", "sha256="+hmacSHA256Hex(d.secret, d.body))
	case "gitlab":
		r.Header.Set("X-Gitlab-Event", d.event)
		r.Header.Set("X-Gitlab-Event-UUID", d.id)
		r.Header.Set("X-Gitlab-Token", d.secret)
	case "gitea":
		r.Header.Set("X-Gitea-Event", d.event)
		r.Header.Set("X-Gitea-Delivery", d.id)
		r.Header.Set("X-Gitea-Signature", hmacSHA256Hex(d.secret, d.body))
	}
	return r
}

func (it *intakeTest) send(t *testing.T, d delivery) (int, answer, string) {
	t.Helper()
	return it.sendRequest(t, d.forge, d.request())
}

func (it *intakeTest) sendRequest(t *testing.T, forge string, r *http.Request) (int, answer, string) {
	t.Helper()
	w := httptest.NewRecorder()
	it.in.Handler(forge).ServeHTTP(w, r)
	var a answer
	json.Unmarshal(w.Body.Bytes(), &a)
	return w.Code, a, w.Body.String()
}

func (it *intakeTest) runCount(t *testing.T) int {
	t.Helper()
	runs, err := it.st.ListRuns(context.Background(), store.RunFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(runs)
}

func TestPushesStartMatchingPipelinesOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		d         delivery
		wantRuns  int
		wantNoRun string // a pipeline's recorded reason
	}{
		{"github push to main touching services/order", delivery{"github", "push", "gh-1", "gh-secret", nil}, 1, "none of the 3 changed paths matches [docs/**]"},
		{"gitlab push to main", delivery{"gitlab", "Push Hook", "gl-1", "gl-token", nil}, 1, ""},
		{"gitlab tag push", delivery{"gitlab", "Tag Push Hook", "gl-2", "gl-token", nil}, 1, ""},
		{"gitea push to develop", delivery{"gitea", "push", "gt-1", "gt-secret", nil}, 1, ""},
	}
	files := map[string]string{"gh-1": "github-push.json", "gl-1": "gitlab-push.json", "gl-2": "gitlab-tag-push.json", "gt-1": "gitea-push.json"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := newIntakeTest(t)
			tt.d.body = fixture(t, files[tt.d.id])
			code, a, raw := it.send(t, tt.d)
			if code != http.StatusAccepted || a.Result != ResultAccepted || len(a.Runs) != tt.wantRuns {
				t.Fatalf("first delivery: %d %s", code, raw)
			}
			if tt.wantNoRun != "" && !strings.Contains(raw, tt.wantNoRun) {
				t.Errorf("answer lacks the no-match reason %q: %s", tt.wantNoRun, raw)
			}
			run, err := it.st.GetRun(context.Background(), a.Runs[0])
			if err != nil || run.Trigger.SHA == "" || run.Trigger.Ref == "" || run.Status != store.RunQueued {
				t.Errorf("run = %+v %v", run, err)
			}
			code, again, raw := it.send(t, tt.d)
			if code != http.StatusOK || !again.Duplicate || len(again.Runs) != 1 || again.Runs[0] != a.Runs[0] {
				t.Errorf("redelivery: %d %s", code, raw)
			}
			if n := it.runCount(t); n != tt.wantRuns {
				t.Errorf("%d runs after a redelivery, want %d", n, tt.wantRuns)
			}
		})
	}
}

func TestRejectedDeliveriesStartNothing(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	push := fixture(t, "github-push.json")
	wrongSig := delivery{"github", "push", "x-1", "not-the-secret", push}.request()
	noSig := delivery{"github", "push", "x-2", "gh-secret", push}.request()
	noSig.Header.Del("X-Hub-Signature-256")
	unknownRepo := []byte(strings.ReplaceAll(string(push), "Codertocat/Hello-World", "someone/else"))
	huge := []byte(`{"pad":"` + strings.Repeat("x", 70<<10) + `"}`)
	get := httptest.NewRequest(http.MethodGet, "/hooks/github", nil)
	tests := []struct {
		name   string
		forge  string
		req    *http.Request
		code   int
		result string
	}{
		{"wrong signature", "github", wrongSig, 401, ResultUnauthorized},
		{"no signature", "github", noSig, 401, ResultUnauthorized},
		{"gitlab wrong token", "gitlab", delivery{"gitlab", "Push Hook", "x-3", "nope", fixture(t, "gitlab-push.json")}.request(), 401, ResultUnauthorized},
		{"gitea signed for github's secret", "gitea", delivery{"gitea", "push", "x-4", "gh-secret", fixture(t, "gitea-push.json")}.request(), 401, ResultUnauthorized},
		{"malformed JSON, signed", "github", delivery{"github", "push", "x-5", "gh-secret", []byte(`{"ref": "refs/heads/main",`)}.request(), 400, ResultMalformed},
		{"push without ref, signed", "github", delivery{"github", "push", "x-6", "gh-secret", []byte(`{"repository": {}}`)}.request(), 400, ResultMalformed},
		{"unknown repository, signed", "github", delivery{"github", "push", "x-7", "gh-secret", unknownRepo}.request(), 404, ResultUnknownRepo},
		{"oversized body", "github", delivery{"github", "push", "x-8", "gh-secret", huge}.request(), 413, ResultTooLarge},
		{"GET", "github", get, 405, ResultBadMethod},
		{"overlong delivery id", "github", delivery{"github", "push", strings.Repeat("d", 300), "gh-secret", push}.request(), 400, ResultMalformed},
	}
	for _, tt := range tests {
		code, a, raw := it.sendRequest(t, tt.forge, tt.req)
		if code != tt.code || a.Result != tt.result {
			t.Errorf("%s: %d %s, want %d %s", tt.name, code, raw, tt.code, tt.result)
		}
		if code == 401 && (a.Reason != "" || a.Delivery != "") {
			t.Errorf("%s: a 401 must not explain itself: %s", tt.name, raw)
		}
	}
	if n := it.runCount(t); n != 0 {
		t.Errorf("rejected deliveries created %d runs", n)
	}
	if it.counts["github/unauthorized"] != 2 || it.counts["github/too_large"] != 1 || it.counts["github/malformed"] != 3 {
		t.Errorf("metrics counts = %v", it.counts)
	}
	if list, _ := it.st.ListDeliveries(context.Background(), store.DeliveryFilter{}); len(list) != 0 {
		t.Errorf("rejected deliveries were stored: %d", len(list))
	}
}

func TestPingAndOtherEventsAreAnsweredAndRecorded(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	code, a, raw := it.send(t, delivery{"github", "ping", "p-1", "gh-secret", fixture(t, "github-ping.json")})
	if code != 200 || a.Result != ResultPing {
		t.Errorf("ping: %d %s", code, raw)
	}
	code, a, raw = it.send(t, delivery{"github", "issues", "i-1", "gh-secret", fixture(t, "github-issues.json")})
	if code != 200 || a.Result != ResultIgnored || a.Reason != "GitHub issues events do not start pipelines" {
		t.Errorf("issues: %d %s", code, raw)
	}
	deleted := strings.Replace(string(fixture(t, "github-push.json")), `"deleted": false`, `"deleted": true`, 1)
	code, a, raw = it.send(t, delivery{"github", "push", "del-1", "gh-secret", []byte(deleted)})
	if code != 200 || a.Result != ResultIgnored || a.Reason != "refs/heads/main was deleted" {
		t.Errorf("deleted branch: %d %s", code, raw)
	}
	// An organisation's hook pings without a repository: its signature
	// says whose it is. Sent form-encoded, GitHub's default content type.
	org := url.Values{"payload": {string(fixture(t, "github-ping-org.json"))}}.Encode()
	r := delivery{"github", "ping", "p-org", "gh-secret", []byte(org)}.request()
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, a, raw = it.sendRequest(t, "github", r); code != 200 || a.Result != ResultPing {
		t.Errorf("organisation ping: %d %s", code, raw)
	}
	// A push that moved nothing (before = after) is how Gitea tests a hook.
	var push map[string]any
	json.Unmarshal(fixture(t, "github-push.json"), &push)
	push["before"] = push["after"]
	test, _ := json.Marshal(push)
	code, a, raw = it.send(t, delivery{"github", "push", "t-1", "gh-secret", test})
	if code != 200 || a.Result != ResultPing || !strings.Contains(a.Reason, "a test delivery") {
		t.Errorf("test delivery: %d %s", code, raw)
	}
	list, _ := it.st.ListDeliveries(context.Background(), store.DeliveryFilter{})
	if len(list) != 5 || it.runCount(t) != 0 {
		t.Errorf("%d deliveries stored, %d runs", len(list), it.runCount(t))
	}
}

// A delivery stored but not processed (the engine died in between) is
// processed by Recover, exactly once.
func TestRecoverProcessesStoredDeliveries(t *testing.T) {
	t.Parallel()
	it := newIntakeTest(t)
	ev, _ := (GitHub{}).Parse(http.Header{"X-Github-Event": {"push"}}, fixture(t, "github-push.json"))
	payload, _ := json.Marshal(ev)
	d := &store.Delivery{Forge: "github", ID: "lost-1", Event: ev.Kind, Repo: "hello", Ref: ev.Ref, SHA: ev.After,
		Status: store.DeliveryReceived, Payload: payload}
	if _, err := it.st.CreateDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	n, err := it.in.Recover(context.Background())
	if err != nil || n != 1 || it.runCount(t) != 1 {
		t.Fatalf("Recover = %d, %v; %d runs", n, err, it.runCount(t))
	}
	// The forge redelivers it too: still one run.
	code, a, raw := it.send(t, delivery{"github", "push", "lost-1", "gh-secret", fixture(t, "github-push.json")})
	if code != 200 || !a.Duplicate || it.runCount(t) != 1 {
		t.Errorf("redelivery after recovery: %d %s, %d runs", code, raw, it.runCount(t))
	}
}

func hmacSHA256Hex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
