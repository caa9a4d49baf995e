package triggers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/runner"
	"github.com/slipwayci/slipway/runner/store"
)

// Submitter queues runs; the runner is one. The intake prepares the runs
// of a delivery, stores them with it (store.Deliveries.RecordDelivery) and
// then hands each one created to Admit; the scheduler submits.
type Submitter interface {
	Submit(ctx context.Context, req runner.Request) (*store.Run, bool, error)
	Prepare(req runner.Request) (*runner.Prepared, error)
	Admit(ctx context.Context, p *runner.Prepared) error
}

// Webhook results, as counted in the engine's metrics.
const (
	ResultAccepted     = "accepted"
	ResultDuplicate    = "duplicate"
	ResultPing         = "ping"
	ResultIgnored      = "ignored"
	ResultUnauthorized = "unauthorized"
	ResultTooLarge     = "too_large"
	ResultMalformed    = "malformed"
	ResultUnknownRepo  = "unknown_repo"
	ResultFailed       = "failed"
	ResultBadMethod    = "method_not_allowed"
	ResultBusy         = "busy"
)

// Intake receives webhook deliveries and turns pushes into runs.
type Intake struct {
	repos      []*Repo
	forges     map[string]Forge
	deliveries IntakeStore
	runs       Submitter
	maxBody    int64
	maxUnauth  int           // places for bodies being read before they are verified
	evictAfter time.Duration // how long such a body keeps its place, whatever its pace
	bodies     *bodySlots
	spoolDir   string
	readFor    time.Duration // to read one body
	minRate    int64         // bytes per second an unverified body must keep up
	count      func(forge, result string)
	log        *slog.Logger
}

// IntakeOption configures an Intake.
type IntakeOption func(*Intake) error

// WithMaxBody sets the largest body accepted (default engineconfig.DefaultMaxBodyBytes);
// larger deliveries are answered 413.
func WithMaxBody(n int64) IntakeOption {
	return func(in *Intake) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxBody(%d): must be positive", n)
		}
		in.maxBody = n
		return nil
	}
}

// WithMaxUnauthenticated bounds how many webhook bodies are read at once
// before their signature is known (default DefaultMaxUnauthenticated), of
// which one address gets no more than half once three quarters are taken.
// When all are taken, a newcomer takes the place of the slowest body (see
// bodySlots); if none may lose it, the newcomer is answered 503 with
// Retry-After. Such a body must arrive at MinBodyRate on average, with no
// pause over MaxBodyIdle.
func WithMaxUnauthenticated(n int) IntakeOption {
	return func(in *Intake) error {
		if n < 1 {
			return fmt.Errorf("WithMaxUnauthenticated(%d): need at least 1", n)
		}
		in.maxUnauth = n
		return nil
	}
}

// WithEvictAfter sets how long a body being read keeps its place however
// slowly it arrives (default DefaultEvictAfter).
func WithEvictAfter(d time.Duration) IntakeOption {
	return func(in *Intake) error {
		if d < 0 {
			return fmt.Errorf("WithEvictAfter(%s): may not be negative", d)
		}
		in.evictAfter = d
		return nil
	}
}

// DefaultReadTimeout bounds the reading of one webhook body.
const DefaultReadTimeout = 30 * time.Second

// WithReadTimeout bounds the reading of one body (default
// DefaultReadTimeout): a body trickled in a byte at a time is cut off.
func WithReadTimeout(d time.Duration) IntakeOption {
	return func(in *Intake) error {
		if d <= 0 {
			return fmt.Errorf("WithReadTimeout(%s): must be positive", d)
		}
		in.readFor = d
		return nil
	}
}

// WithSpoolDir sets where bodies larger than spoolMemory are spooled while
// they are verified (default: the OS temp dir).
func WithSpoolDir(dir string) IntakeOption {
	return func(in *Intake) error {
		in.spoolDir = dir
		return nil
	}
}

// WithCounter reports each delivery's result (default: not counted).
func WithCounter(f func(forge, result string)) IntakeOption {
	return func(in *Intake) error {
		in.count = f
		return nil
	}
}

// WithIntakeLogger sets the logger (default: discard).
func WithIntakeLogger(l *slog.Logger) IntakeOption {
	return func(in *Intake) error {
		in.log = l
		return nil
	}
}

// NewIntake returns the webhook intake for repos.
func NewIntake(repos []*Repo, d IntakeStore, runs Submitter, opts ...IntakeOption) (*Intake, error) {
	in := &Intake{repos: repos, forges: Forges(), deliveries: d, runs: runs, maxBody: engineconfig.DefaultMaxBodyBytes,
		maxUnauth: DefaultMaxUnauthenticated, evictAfter: DefaultEvictAfter, readFor: DefaultReadTimeout, minRate: MinBodyRate,
		count: func(string, string) {}, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(in); err != nil {
			return nil, err
		}
	}
	in.bodies = newBodySlots(in.maxUnauth, in.evictAfter)
	return in, nil
}

// answer is the JSON body of every webhook response.
type answer struct {
	Delivery  string        `json:"delivery,omitempty"`
	Result    string        `json:"result"`
	Runs      []int64       `json:"runs,omitempty"`
	Matches   []store.Match `json:"matches,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Duplicate bool          `json:"duplicate,omitempty"`
}

func (in *Intake) reply(w http.ResponseWriter, forge string, code int, a answer) {
	in.count(forge, a.Result)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(a)
}

// DefaultMaxUnauthenticated bounds how many webhook bodies are read at
// once before they are known to be signed (WithMaxUnauthenticated).
const DefaultMaxUnauthenticated = 16

// Handler serves POST /hooks/{forge}. A stranger's request costs little:
// one without the forge's credential header is refused before its body is
// read; a GitLab token is checked before the body is read; a signed body
// is verified as it streams (at most spoolMemory of it in memory, the rest
// in a temporary file), and only so many are read at once.
func (in *Intake) Handler(forgeName string) http.Handler {
	forge, ok := in.forges[forgeName]
	if !ok {
		panic("triggers: unknown forge " + forgeName)
	}
	var mine []*Repo
	for _, repo := range in.repos {
		if repo.Config.Forge == forgeName {
			mine = append(mine, repo)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			in.reply(w, forgeName, http.StatusMethodNotAllowed, answer{Result: ResultBadMethod, Reason: "use POST"})
			return
		}
		if r.ContentLength > in.maxBody {
			in.reply(w, forgeName, http.StatusRequestEntityTooLarge, answer{Result: ResultTooLarge, Reason: fmt.Sprintf("body larger than %d bytes", in.maxBody)})
			return
		}
		cred, signed := forge.Credential(r.Header)
		candidates := mine
		if !signed { // a token: known before the body
			candidates = nil
			for _, repo := range mine {
				if repo.Secret != "" && equalConstantTime(cred, repo.Secret) {
					candidates = append(candidates, repo)
				}
			}
		}
		if cred == "" || len(candidates) == 0 {
			in.reply(w, forgeName, http.StatusUnauthorized, answer{Result: ResultUnauthorized})
			return
		}
		place, busy := in.bodies.take(r, http.NewResponseController(w))
		if busy != "" {
			w.Header().Set("Retry-After", "5")
			in.reply(w, forgeName, http.StatusServiceUnavailable, answer{Result: ResultBusy, Reason: busy})
			return
		}
		body, candidates, code, a := in.read(w, r, place, forgeName, cred, signed, candidates)
		in.bodies.put(place)
		if code != 0 {
			in.reply(w, forgeName, code, a)
			return
		}
		code, a = in.accept(r.Context(), forge, r.Header, body, candidates)
		in.reply(w, forgeName, code, a)
	})
}

// read streams the body through the signers of candidates into a spool,
// and returns it with the candidates that sign it; code is non-zero when
// the request is answered instead.
func (in *Intake) read(w http.ResponseWriter, r *http.Request, place *bodyRead, forge, cred string, signed bool, candidates []*Repo) ([]byte, []*Repo, int, answer) {
	sp := &spool{dir: in.spoolDir}
	defer sp.Close()
	// Not supported by every ResponseWriter (tests' recorders); the server's
	// own timeouts still apply then.
	paced := &pacedBody{body: r.Body, place: place, until: place.start.Add(in.readFor), minRate: in.minRate}
	sign := newSigners(candidates)
	_, err := io.Copy(io.MultiWriter(sign, sp), http.MaxBytesReader(w, io.NopCloser(paced), in.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, nil, http.StatusRequestEntityTooLarge, answer{Result: ResultTooLarge, Reason: fmt.Sprintf("body larger than %d bytes", in.maxBody)}
	case err != nil:
		in.log.Warn("reading webhook body", "forge", forge, "err", err)
		return nil, nil, http.StatusBadRequest, answer{Result: ResultMalformed, Reason: "could not read the body"}
	}
	if signed {
		if candidates = sign.matching(cred); len(candidates) == 0 {
			return nil, nil, http.StatusUnauthorized, answer{Result: ResultUnauthorized}
		}
	}
	body, err := sp.Bytes()
	if err != nil {
		in.log.Error("reading back a spooled webhook body", "forge", forge, "err", err)
		return nil, nil, http.StatusInternalServerError, answer{Result: ResultFailed, Reason: "could not read the body back"}
	}
	return body, candidates, 0, answer{}
}

// accept handles an authenticated delivery: parse, find its repository,
// deduplicate, persist, process.
func (in *Intake) accept(ctx context.Context, forge Forge, h http.Header, body []byte, candidates []*Repo) (int, answer) {
	id := forge.DeliveryID(h)
	if id == "" {
		sum := sha256.Sum256(body)
		id = "sha256:" + hex.EncodeToString(sum[:16])
	}
	if len(id) > 200 {
		return http.StatusBadRequest, answer{Result: ResultMalformed, Reason: "delivery id longer than 200 characters"}
	}
	payload, err := jsonPayload(h, body)
	if err != nil {
		return http.StatusBadRequest, answer{Delivery: id, Result: ResultMalformed, Reason: err.Error()}
	}
	ev, err := forge.Parse(h, payload)
	if err != nil {
		return http.StatusBadRequest, answer{Delivery: id, Result: ResultMalformed, Reason: err.Error()}
	}
	var repo *Repo
	for _, c := range candidates {
		if c.matches(ev.RepoURLs) {
			repo = c
			break
		}
	}
	if repo == nil && ev.Kind == KindPing && len(ev.RepoURLs) == 0 {
		// An organisation's or an app's hook pings without a repository;
		// the credential already says whose hook it is.
		repo = candidates[0]
	}
	if repo == nil {
		return http.StatusNotFound, answer{Delivery: id, Result: ResultUnknownRepo, Reason: "no watched repository has this URL"}
	}
	normalized, _ := json.Marshal(ev)
	d := &store.Delivery{Forge: forge.Name(), ID: id, ReceivedAt: time.Now(), Event: ev.Kind, Repo: repo.Config.Name,
		Ref: ev.Ref, SHA: ev.After, Status: store.DeliveryReceived, Payload: normalized}
	old, err := in.process(ctx, d, ev, repo)
	if err != nil {
		in.log.Error("storing webhook delivery", "forge", forge.Name(), "delivery", id, "err", err)
		return http.StatusInternalServerError, answer{Delivery: id, Result: ResultFailed, Reason: "could not store the delivery"}
	}
	if old.Processed() {
		return http.StatusOK, answer{Delivery: id, Result: ResultDuplicate, Duplicate: true, Runs: old.RunIDs(), Matches: old.Matches, Reason: old.Reason}
	}
	a := answer{Delivery: id, Runs: d.RunIDs(), Matches: d.Matches, Reason: d.Reason, Duplicate: old != nil}
	switch {
	case d.Status == store.DeliveryFailed:
		a.Result = ResultFailed
		return http.StatusInternalServerError, a
	case ev.Kind == KindPing:
		a.Result = ResultPing
		return http.StatusOK, a
	case d.Status == store.DeliveryIgnored:
		a.Result = ResultIgnored
		return http.StatusOK, a
	}
	a.Result = ResultAccepted
	return http.StatusAccepted, a
}

// pendingRun is a run a delivery starts, ready to be stored with it.
type pendingRun struct {
	match int // its index in the delivery's matches
	ev    *Event
	run   *runner.Prepared
}

// process decides what a delivery starts and stores the delivery with its
// outcome and its runs in one transaction, then queues the runs. old is
// the delivery stored under the same ID before, if any; if it was
// processed, nothing was written (Delivery.Processed). Runs are keyed by what was
// pushed, so processing a delivery twice never starts a run twice.
func (in *Intake) process(ctx context.Context, d *store.Delivery, ev *Event, repo *Repo) (old *store.Delivery, err error) {
	var (
		status, reason string
		matches        []store.Match
		pending        []pendingRun
	)
	switch {
	case ev.Kind == KindPing:
		status, reason = store.DeliveryProcessed, "pong"
		if ev.Reason != "" {
			reason = "pong: " + ev.Reason
		}
	case ev.Kind == KindIgnored:
		status, reason = store.DeliveryIgnored, ev.Reason
	case ev.Deleted:
		status, reason = store.DeliveryIgnored, fmt.Sprintf("%s was deleted", ev.Ref)
	default:
		status = store.DeliveryProcessed
		for _, src := range repo.Sources {
			m, run, err := in.prepare(ctx, ev, repo, src)
			if err != nil {
				status = store.DeliveryFailed
				m.Reason = err.Error()
			}
			if run != nil {
				pending = append(pending, pendingRun{match: len(matches), ev: ev, run: run})
			}
			matches = append(matches, m)
		}
		if status == store.DeliveryFailed {
			reason = "some pipelines could not be read or started; a redelivery retries them"
		}
	}
	runs := make([]*store.NewRun, len(pending))
	for i, p := range pending {
		runs[i] = &p.run.NewRun
	}
	old, err = in.deliveries.RecordDelivery(ctx, d, runs, func(d *store.Delivery) {
		d.Status, d.Reason, d.Matches = status, reason, slices.Clone(matches)
		for _, p := range pending {
			d.Matches[p.match].RunID, d.Matches[p.match].Reason = p.run.Run.ID, p.reason()
		}
	})
	if err != nil || old.Processed() {
		return old, err
	}
	in.moveHead(ctx, repo, ev)
	for _, p := range pending {
		if !p.run.Created {
			continue
		}
		// stored: what follows is done even if the sender hangs up now
		if err := in.runs.Admit(context.WithoutCancel(ctx), p.run); err != nil {
			in.log.Error("queueing a webhook's run", "delivery", d.ID, "run", p.run.Run.ID, "err", err)
		}
	}
	return old, nil
}

// reason says why the stored run will not run as a new one ("" if it will).
func (p pendingRun) reason() string {
	switch {
	case !p.run.Created:
		return fmt.Sprintf("the same push (%s %s..%s) already started run %d", p.ev.Ref, short(p.ev.Before), short(p.ev.After), p.run.Run.ID)
	case p.run.Refused() != "":
		return "refused: " + p.run.Refused()
	}
	return ""
}

// prepare reads one pipeline for a push and, if its trigger matches,
// prepares its run.
func (in *Intake) prepare(ctx context.Context, ev *Event, repo *Repo, src Source) (store.Match, *runner.Prepared, error) {
	p, err := src.Load(ctx, ev.Ref, ev.After)
	var invalid pipeline.Errors
	if errors.As(err, &invalid) {
		// The file at that commit is what it is: refused, with where and
		// why, not failed (a redelivery would read it again, to no end).
		return store.Match{Pipeline: src.String(), Reason: "refused: " + err.Error()}, nil, nil
	}
	if err != nil {
		return store.Match{Pipeline: src.String()}, nil, err
	}
	m := store.Match{Pipeline: p.Metadata.Name}
	if ok, reason := p.MatchPush(ev.Ref, ev.Paths); !ok {
		m.Reason = reason
		return m, nil, nil
	}
	if ev.Listed && strings.HasPrefix(ev.Ref, "refs/heads/") && len(p.On.Push.Paths) > 0 {
		// Never more than the delivery would have started.
		m.Reason = fmt.Sprintf("not started: the push was found by listing the repository, which does not tell the paths it changed, and the pipeline runs only for changes to %v", p.On.Push.Paths)
		return m, nil, nil
	}
	// Keyed by what was pushed, not by the delivery's ID (which is not
	// signed): a replayed body under a new ID finds the run it started.
	run, err := in.runs.Prepare(repo.Request(p, store.Trigger{Event: ev.Kind, Repo: repo.Config.URL, Ref: ev.Ref, SHA: ev.After, Actor: ev.Pusher},
		pushKey(repo, ev, src.String()+"#"+p.Metadata.Name)))
	return m, run, err
}

// Recover processes the deliveries that were stored but not processed
// when the engine last stopped, so no accepted delivery is lost.
func (in *Intake) Recover(ctx context.Context) (int, error) {
	pending, err := in.deliveries.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryReceived, Limit: 10000})
	if err != nil {
		return 0, fmt.Errorf("recovering webhook deliveries: %w", err)
	}
	for _, d := range pending {
		var ev Event
		repo := in.repo(d.Repo)
		if err := json.Unmarshal(d.Payload, &ev); err != nil || repo == nil {
			d.Status, d.Reason = store.DeliveryFailed, "stored delivery can no longer be processed (repository removed from the config?)"
			in.deliveries.UpdateDelivery(ctx, d)
			continue
		}
		if _, err := in.process(ctx, d, &ev, repo); err != nil {
			in.log.Error("recovering webhook delivery", "forge", d.Forge, "delivery", d.ID, "err", err)
		}
	}
	return len(pending), nil
}

func (in *Intake) repo(name string) *Repo {
	for _, r := range in.repos {
		if r.Config.Name == name {
			return r
		}
	}
	return nil
}

// jsonPayload is the delivery's JSON: the body, or its payload field when
// the hook was set to send application/x-www-form-urlencoded (GitHub and
// Gitea let a user choose).
func jsonPayload(h http.Header, body []byte) ([]byte, error) {
	ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("malformed form-encoded delivery: %v", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, errors.New("form-encoded delivery without a payload field")
	}
	return []byte(payload), nil
}
