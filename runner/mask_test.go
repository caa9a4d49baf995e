package runner

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/eventually"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/runner/store/sqlstore"
)

// leaks lists every way a test hides secret inside other text: as written,
// URL-encoded, hex, base64 of either alphabet (padded or not) as a whole,
// inside a longer base64 text at each byte offset, and as Basic auth.
func leaks(secret string, r *rand.Rand) map[string]string {
	noise := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	}
	out := map[string]string{
		"plain":      "token=" + secret + " done",
		"query":      "https://x/?t=" + url.QueryEscape(secret),
		"path":       "https://x/" + url.PathEscape(secret) + "/y",
		"hex":        "0x" + hex.EncodeToString([]byte(secret)),
		"HEX":        strings.ToUpper(hex.EncodeToString([]byte(secret))),
		"basic":      "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+secret)),
		"dockerauth": `{"auths":{"r":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("robot$ci:"+secret)) + `"}}}`,
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		for k := range 3 {
			pre := noise(k + 3*r.IntN(4))
			out["b64@"+string(rune('0'+k))+enc.EncodeToString([]byte("-"))] = enc.EncodeToString([]byte(pre + secret + noise(r.IntN(5))))
		}
	}
	return out
}

// The form of a secret that must not survive masking in each leak: the
// characters that depend on the secret alone.
func mustNotContain(secret string) []string {
	forms := []string{secret}
	if len(secret) >= 3 {
		forms = append(forms, hex.EncodeToString([]byte(secret)))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			forms = append(forms, base64Offsets(enc, secret)...)
		}
	}
	return forms
}

// Property: a secret of any length and bytes is masked in every encoding
// at every offset.
func TestMaskEveryEncodingAtEveryOffset(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!@#$%^&*()+=/?: "
	for i := range 400 {
		n := 6 + r.IntN(40)
		b := make([]byte, n)
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		secret := string(b)
		m := newMasker([]string{secret}, "robot$ci")
		for kind, text := range leaks(secret, r) {
			got := m.Mask(text)
			for _, f := range mustNotContain(secret) {
				if len(f) >= 4 && strings.Contains(got, f) {
					t.Fatalf("case %d, secret %q, %s: masked %q still holds %q", i, secret, kind, got, f)
				}
			}
			if !strings.Contains(got, Masked) {
				t.Fatalf("case %d, secret %q, %s: nothing masked in %q", i, secret, kind, got)
			}
		}
	}
}

// failingLogs refuses AppendLogs while fail is set, then passes to next.
type failingLogs struct {
	store.Logs
	mu    sync.Mutex
	fail  bool
	calls int
}

func (f *failingLogs) AppendLogs(ctx context.Context, lines []store.LogLine) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail {
		return errors.New("database is locked")
	}
	return f.Logs.AppendLogs(ctx, lines)
}

func (f *failingLogs) refuse(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

// appends counts the calls of AppendLogs.
func (f *failingLogs) appends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type countDrops struct {
	noObserver
	mu sync.Mutex
	n  int
}

func (c *countDrops) LogLinesDropped(n int) { c.mu.Lock(); c.n += n; c.mu.Unlock() }

func newTestSink(t *testing.T, secrets []string, limit int64) (*sink, *failingLogs, *countDrops) {
	t.Helper()
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run := &store.Run{Pipeline: "p", App: "p", Status: store.RunRunning, CreatedAt: time.Now(), Trigger: store.Trigger{Event: "manual"}}
	if err := st.CreateRun(context.Background(), &store.NewRun{Run: run, Stages: []store.Stage{{Index: 0, Name: "s", Kind: "fake"}}}); err != nil || run.ID != 1 {
		t.Fatal(run.ID, err)
	}
	logs, drops := &failingLogs{Logs: st}, &countDrops{}
	return &sink{ctx: context.Background(), store: logs, notes: newNotifier(), mask: newMasker(secrets),
		log: slog.New(slog.DiscardHandler), observer: drops, runID: 1, stage: "s", attempt: 1, limit: limit}, logs, drops
}

func stored(t *testing.T, l store.Logs) []string {
	t.Helper()
	lines, err := l.ReadLogs(context.Background(), 1, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

// A secret is masked even where a long line is split, and when it
// arrives in pieces across writes.
func TestSinkMasksAcrossSplitsAndWrites(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t-value-that-is-long"
	for _, at := range []int{MaxLineLength - 3, MaxLineLength - len(secret) + 1, MaxLineLength, 2*MaxLineLength - 10} {
		s, logs, _ := newTestSink(t, []string{secret}, 0)
		text := strings.Repeat("x", at) + secret + strings.Repeat("y", MaxLineLength) + "\n"
		for len(text) > 0 { // in writes of 1000 bytes, so the secret is split across some
			n := min(1000, len(text))
			if _, err := s.Write([]byte(text[:n])); err != nil {
				t.Fatal(err)
			}
			text = text[n:]
		}
		s.Close()
		all := stored(t, logs.Logs)
		for _, l := range all {
			if len(l) > MaxLineLength {
				t.Errorf("at %d: a stored line of %d bytes", at, len(l))
			}
			for i := 6; i < len(secret); i++ {
				if strings.HasSuffix(l, secret[:i]) || strings.HasPrefix(l, secret[len(secret)-i:]) {
					t.Errorf("at %d: a line holds a piece of the secret (%d bytes)", at, i)
				}
			}
		}
		if got := strings.Join(all, ""); strings.Count(got, Masked) != 1 || len(got) != at+len(Masked)+MaxLineLength {
			t.Errorf("at %d: stored %d bytes with %d masks", at, len(got), strings.Count(got, Masked))
		}
	}
}

// A stage that writes without end is cut at the cap with a marker.
func TestSinkCapsAnAttemptsLog(t *testing.T) {
	t.Parallel()
	s, logs, _ := newTestSink(t, nil, 4<<10)
	line := strings.Repeat("y", 99) + "\n"
	for range 1000 {
		if _, err := s.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	all := stored(t, logs.Logs)
	if len(all) != 4096/99+1 || !strings.Contains(all[len(all)-1], "log truncated") {
		t.Errorf("stored %d lines, last %q; want 41 and the marker", len(all), all[len(all)-1])
	}
}

// The store refusing lines never fails the writer; held lines are stored
// once it recovers, and dropped (and counted) when it never does.
func TestSinkOutlivesStoreHiccups(t *testing.T) {
	t.Parallel()
	s, logs, drops := newTestSink(t, nil, 0)
	logs.refuse(true)
	for i := range 5 {
		if _, err := s.Write([]byte("line " + string(rune('0'+i)) + "\n")); err != nil {
			t.Fatalf("write %d failed while the store refused: %v", i, err)
		}
	}
	logs.refuse(false)
	s.Write([]byte("line 5\n"))
	eventually.True(t, 5*time.Second, "the held lines stored after recovery", func() bool { return len(stored(t, logs.Logs)) == 6 })
	if got := stored(t, logs.Logs); got[0] != "line 0" || got[5] != "line 5" {
		t.Errorf("after recovery: %q", got)
	}
	logs.refuse(true)
	s.Write([]byte("lost\n"))
	s.Close()
	if drops.n != 1 || len(stored(t, logs.Logs)) != 6 {
		t.Errorf("dropped %d, want 1", drops.n)
	}
}

// A burst of lines is stored in a few writes, not one per line, in
// order; a line written after a pause is stored without waiting for
// Close.
func TestSinkStoresABurstTogether(t *testing.T) {
	t.Parallel()
	s, logs, _ := newTestSink(t, nil, 0)
	for i := range 1000 {
		fmt.Fprintf(s, "line %d\n", i)
	}
	s.Close()
	got := stored(t, logs.Logs)
	if len(got) != 1000 || got[0] != "line 0" || got[999] != "line 999" {
		t.Fatalf("stored %d lines, first %q, last %q", len(got), got[0], got[len(got)-1])
	}
	if n := logs.appends(); n > 10 {
		t.Errorf("1,000 lines written one by one took %d writes of the store", n)
	}

	s, logs, _ = newTestSink(t, nil, 0)
	s.Write([]byte("first\n"))
	if got := stored(t, logs.Logs); len(got) != 1 {
		t.Fatalf("a line after a pause is not stored at once: %q", got)
	}
	s.Write([]byte("second\n")) // within storeEvery of the first: held, then stored by the timer
	eventually.True(t, 5*time.Second, "the held line stored without Close", func() bool { return len(stored(t, logs.Logs)) == 2 })
	s.Close()
}

// The user name a pipeline pairs with a token is known to the masker.
func TestAuthUsernamesAreMasked(t *testing.T) {
	t.Parallel()
	p := &pipeline.Pipeline{Stages: []pipeline.Stage{{Name: "b", Build: &pipeline.BuildSpec{Auth: pipeline.Auth{Token: "T", Username: "robot$shop+ci"}}}}}
	m := newMasker([]string{"tok3n-value"}, authUsernames(p)...)
	docker := base64.StdEncoding.EncodeToString([]byte("robot$shop+ci:tok3n-value"))
	if got := m.Mask(`{"auth":"` + docker + `"}`); got != `{"auth":"***"}` {
		t.Errorf("docker auth masked as %q", got)
	}
}
