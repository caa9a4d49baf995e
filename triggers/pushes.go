package triggers

// What identifies a push (its content, whichever way the engine learnt of
// it) and where pushes moved their refs.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// IntakeStore is what the intake keeps: deliveries, and the heads they
// moved (which the Reconciler compares with the forge's).
type IntakeStore interface {
	store.Deliveries
	store.Heads
}

// moveHead records where a push moved its ref, for the Reconciler. A
// head not recorded costs nothing worse than a listing that finds the
// push again — under the same key, so it starts nothing twice.
func (in *Intake) moveHead(ctx context.Context, repo *Repo, ev *Event) {
	if ev.Kind != KindPush && ev.Kind != KindTag || ev.Ref == "" {
		return
	}
	before, after := ev.Before, ev.After
	if isZeroSHA(before) {
		before = ""
	}
	if ev.Deleted || isZeroSHA(after) {
		after = ""
	}
	if err := in.deliveries.MoveHead(context.WithoutCancel(ctx), repo.Config.Name, ev.Ref, before, after, time.Now()); err != nil {
		in.log.Warn("recording a pushed head", "repository", repo.Config.Name, "ref", ev.Ref, "err", err)
	}
}

// pushKey identifies a push by its content: repository, ref, before and
// after (and the pipeline it starts: where it was read from, and its name).
func pushKey(repo *Repo, ev *Event, pipelineName string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{repo.Config.Name, ev.Ref, ev.Before, ev.After, pipelineName}, "\x00")))
	return "push/" + hex.EncodeToString(sum[:])
}

func short(sha string) string { return sha[:min(7, len(sha))] }
