package triggers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/slipwayci/slipway/runner/store"
)

// A push whose delivery never arrived (the engine was down, the forge
// gave up) is found by listing the repository: the Reconciler compares
// each watched repository's branch and tag heads with the heads the
// engine last saw (from deliveries, and from its last listing), and
// treats a head it has not seen as a push from the head it last saw of
// that ref (from nothing, for a new ref). The push goes through the
// intake as a delivery of forge "reconciler" would: the same pipelines,
// triggers and grants, and runs under the same content key (repository,
// ref, before, after), so a push seen both ways starts each run once.
//
// The first listing of a repository records the heads of the refs no
// delivery moved as they stand: an engine that starts does not run every
// branch it finds. A head is taken for a
// missed push only once the forge has had the grace period to deliver it
// (a delivery on its way is not raced), and a listing starts at most
// MaxFoundPerListing pushes per repository (the rest at the next one).
// Failed deliveries of the last day are processed again by the same
// loop. The paths a push changed are not known from a listing: a
// pipeline with path filters is not started by a push found this way
// (its match says so), so that a listing never starts a run the
// delivery would not have.

// ReconcilerForge is the forge name of the deliveries the Reconciler makes.
const ReconcilerForge = "reconciler"

// MaxFoundPerListing bounds the missed pushes one listing of one
// repository starts.
const MaxFoundPerListing = 100

// maxRefs bounds the heads and tags a repository may have for the
// Reconciler to list it.
const maxRefs = 50_000

// DefaultGrace is how long a head the forge shows may wait for its
// delivery before it is taken for a missed push.
const DefaultGrace = 15 * time.Second

// ListHeads lists a repository's branch and tag heads (ref → commit).
type ListHeads func(ctx context.Context, repo *Repo) (map[string]string, error)

// Reconciler finds missed pushes; see above.
type Reconciler struct {
	in      *Intake
	list    ListHeads
	every   time.Duration
	grace   time.Duration
	found   func(repo string)
	log     *slog.Logger
	pending map[string]time.Time // mismatches (repo, ref, commit) seen, since when
}

// ReconcilerOption configures a Reconciler.
type ReconcilerOption func(*Reconciler)

// WithGrace sets how long a head waits for its delivery (DefaultGrace).
func WithGrace(d time.Duration) ReconcilerOption { return func(r *Reconciler) { r.grace = d } }

// WithLister replaces listing the forge over git (GitHeads).
func WithLister(l ListHeads) ReconcilerOption { return func(r *Reconciler) { r.list = l } }

// WithFound counts the missed pushes found, by repository.
func WithFound(f func(repo string)) ReconcilerOption { return func(r *Reconciler) { r.found = f } }

// NewReconciler lists the intake's repositories every interval.
func NewReconciler(in *Intake, every time.Duration, opts ...ReconcilerOption) *Reconciler {
	r := &Reconciler{in: in, list: GitHeads, every: every, grace: DefaultGrace, found: func(string) {},
		log: in.log, pending: map[string]time.Time{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run lists the repositories at once and every interval until ctx ends;
// after a listing that saw heads still within their grace, once more
// when it ends.
func (r *Reconciler) Run(ctx context.Context) {
	for {
		waiting, err := r.Pass(ctx, time.Now())
		if err != nil {
			r.log.Warn("looking for missed pushes", "err", err)
		}
		next := r.every
		if waiting {
			next = min(next, r.grace)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// Pass lists every repository once, as of now, starts the missed pushes
// it finds and processes again the failed deliveries of the last day. It
// reports whether a head it saw is still within its grace, and every
// repository's error.
func (r *Reconciler) Pass(ctx context.Context, now time.Time) (waiting bool, err error) {
	var errs []error
	for _, repo := range r.in.repos {
		w, err := r.reconcile(ctx, repo, now)
		waiting = waiting || w
		if err != nil {
			errs = append(errs, fmt.Errorf("repository %s: %w", repo.Config.Name, err))
		}
	}
	if err := r.retryFailed(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return waiting, errors.Join(errs...)
}

// reconcile compares one repository's heads with those last seen.
func (r *Reconciler) reconcile(ctx context.Context, repo *Repo, now time.Time) (waiting bool, err error) {
	name := repo.Config.Name
	current, err := r.list(ctx, repo)
	if err != nil {
		return false, err
	}
	seen, listed, err := r.in.deliveries.ListHeads(ctx, name)
	if err != nil {
		return false, err
	}
	if !listed {
		// The first listing: a ref no delivery moved is recorded as it
		// stands; one a delivery moved is compared like any other.
		unseen := map[string]string{}
		for ref, sha := range current {
			if _, ok := seen[ref]; !ok {
				unseen[ref], seen[ref] = sha, sha
			}
		}
		if err := r.in.deliveries.AddHeads(ctx, name, unseen, now); err != nil {
			return false, err
		}
	}
	started := 0
	for _, ref := range slices.Sorted(maps.Keys(current)) {
		sha := current[ref]
		key := name + "\x00" + ref + "\x00" + sha
		if seen[ref] == sha {
			delete(r.pending, key)
			continue
		}
		since, ok := r.pending[key]
		if !ok {
			since = now
			r.pending[key] = now
		}
		if now.Sub(since) < r.grace || started == MaxFoundPerListing {
			waiting = true
			continue
		}
		if err := r.missed(ctx, repo, ref, seen[ref], sha, now); err != nil {
			return waiting, err
		}
		delete(r.pending, key)
		started++
	}
	for ref, sha := range seen {
		if _, ok := current[ref]; !ok {
			if err := r.in.deliveries.MoveHead(ctx, name, ref, sha, "", now); err != nil {
				return waiting, err
			}
		}
	}
	return waiting, nil
}

// zeroCommit is what forges send as the "before" of a new ref.
const zeroCommit = "0000000000000000000000000000000000000000"

// missed hands the push of ref from before ("" for a new ref) to after
// to the intake, as the delivery of forge "reconciler".
func (r *Reconciler) missed(ctx context.Context, repo *Repo, ref, before, after string, now time.Time) error {
	from := before
	if from == "" {
		from = zeroCommit
	}
	ev := &Event{Kind: refKind(ref), Name: "missed push", RepoURLs: []string{repo.Config.URL}, RepoName: repo.Config.Name,
		Ref: ref, Before: from, After: after, Listed: true}
	payload, _ := json.Marshal(ev)
	sum := sha256.Sum256([]byte(strings.Join([]string{repo.Config.Name, ref, from, after}, "\x00")))
	d := &store.Delivery{Forge: ReconcilerForge, ID: hex.EncodeToString(sum[:16]), ReceivedAt: now, Event: ev.Kind,
		Repo: repo.Config.Name, Ref: ref, SHA: after, Status: store.DeliveryReceived, Payload: payload}
	if _, err := r.in.process(ctx, d, ev, repo); err != nil {
		return fmt.Errorf("starting the missed push of %s %s..%s: %w", ref, short(from), short(after), err)
	}
	if err := r.in.deliveries.MoveHead(ctx, repo.Config.Name, ref, before, after, now); err != nil {
		return err
	}
	r.found(repo.Config.Name)
	r.log.Info("found a push whose delivery never arrived", "repository", repo.Config.Name, "ref", ref,
		"before", short(from), "after", short(after), "delivery", d.ID, "status", d.Status, "runs", d.RunIDs())
	return nil
}

// retryFailed processes again the deliveries of the last day that failed
// (a pipeline could not be read or started): at most 100 a pass.
func (r *Reconciler) retryFailed(ctx context.Context, now time.Time) error {
	failed, err := r.in.deliveries.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryFailed, Limit: 100})
	if err != nil {
		return fmt.Errorf("listing failed deliveries: %w", err)
	}
	for _, d := range failed {
		repo := r.in.repo(d.Repo)
		var ev Event
		if repo == nil || now.Sub(d.ReceivedAt) > 24*time.Hour || json.Unmarshal(d.Payload, &ev) != nil {
			continue
		}
		if _, err := r.in.process(ctx, d, &ev, repo); err != nil {
			return fmt.Errorf("processing delivery %s again: %w", d.ID, err)
		}
	}
	return nil
}

// listTimeout bounds one listing of one repository.
const listTimeout = time.Minute

// GitHeads lists a repository's branches and tags as git does (the ref
// advertisement of its clone URL, with its token): one request, the same
// on every forge.
func GitHeads(ctx context.Context, repo *Repo) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var auth transport.AuthMethod
	if repo.Token != "" {
		auth = &githttp.BasicAuth{Username: "x-access-token", Password: repo.Token}
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{repo.Config.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the heads of %s: %w", repo.Config.URL, redact(err, repo.Token))
	}
	if len(refs) > maxRefs {
		return nil, fmt.Errorf("listing the heads of %s: %d refs, more than the %d the engine lists", repo.Config.URL, len(refs), maxRefs)
	}
	heads := map[string]string{}
	for _, ref := range refs {
		name := ref.Name()
		if (name.IsBranch() || name.IsTag()) && !strings.HasSuffix(name.String(), "^{}") && !ref.Hash().IsZero() {
			heads[name.String()] = ref.Hash().String()
		}
	}
	return heads, nil
}
