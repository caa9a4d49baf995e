package canary

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/stages"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/gitops"
	"github.com/slipwayci/slipway/stages/retry"
)

// apply commits one edit of the config repository and has Argo CD sync
// exactly that commit.
func (r *rollout) apply(ctx context.Context, msg string, edit gitops.Edit) (string, error) {
	res, err := r.writer.Write(ctx, msg, edit)
	if err != nil {
		return "", fmt.Errorf("writing the config repository: %w", argocd.Redact(err, r.run.Secrets[r.spec.GitOps.Auth.Token]))
	}
	r.notes.LastCommit = res.Commit
	if _, err := r.argo.SyncAndWait(ctx, r.spec.ArgoCD.App, res.Commit, r.syncTimeout(), r.say); err != nil {
		return res.Commit, err
	}
	return res.Commit, nil
}

func (r *rollout) syncTimeout() time.Duration {
	if t := time.Duration(r.spec.ArgoCD.Timeout); t > 0 {
		return t
	}
	return DefaultSyncTimeout
}

// verify waits (a few seconds at most) until the live router gives the
// canary weight percent, and returns when it saw it.
func (r *rollout) verify(ctx context.Context, weight int) (time.Time, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := r.router.VerifyWeight(ctx)
		if err == nil {
			r.notes.LiveWeight, r.notes.LiveAt = &got, time.Now()
		}
		if err == nil && got == weight {
			return time.Now(), nil
		}
		if err == nil {
			err = fmt.Errorf("the live router gives the canary %d%%, not %d%%", got, weight)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("verifying the weight Argo CD reports live: %w", err)
		}
		if retry.Sleep(ctx, 100*time.Millisecond) != nil {
			return time.Time{}, ctx.Err()
		}
	}
}

// rollback returns all traffic and both workloads to the stable image in
// one commit, syncs and verifies it, then records and notifies. It runs
// on a context of its own: a cancelled run or an expired stage timeout
// does not stop it.
func (r *rollout) rollback(ctx context.Context, v verdict) (stages.Result, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*r.syncTimeout()+time.Minute)
	defer cancel()
	r.notes.Pending = &v
	weight := r.cp.Weight
	if err := r.move(rctx, release.Failed, r.cp.Step, weight, v.Reason); err != nil {
		return stages.Result{}, err
	}
	r.say("rolling back %s at %d%%: %s", r.short(), weight, v.Reason)
	decided := time.Now()
	msg := fmt.Sprintf("slipway: roll back %s canary %s\n\nReason: %s\nPipeline: %s\nRun: %d\nStable: %s\n",
		r.run.App, r.short(), v.Reason, r.run.Pipeline, r.run.ID, r.notes.StableRef)
	stable, canary := gitops.LocatorOf(r.spec.Stable), gitops.LocatorOf(r.spec.GitOps.Image)
	image, digest, _ := strings.Cut(r.notes.StableRef, "@")
	var commit string
	var restored, pushed time.Time
	err := persist(rctx, r.say, "the rollback", func() error {
		res, err := r.writer.Write(rctx, msg, func(root string) (bool, error) {
			return anyChanged(
				func() (bool, error) { return r.router.SetWeight(root, 0) },
				func() (bool, error) { return gitops.SetImage(root, r.spec.GitOps.Path, canary, image, digest) },
				func() (bool, error) { return gitops.SetImage(root, r.spec.GitOps.Path, stable, image, digest) })
		})
		if err != nil {
			return argocd.Redact(err, r.run.Secrets[r.spec.GitOps.Auth.Token])
		}
		commit, pushed = res.Commit, time.Now()
		restored, err = r.syncWatching(rctx, commit)
		return err
	})
	if err != nil {
		return stages.Result{}, fmt.Errorf("rolling back (traffic may still reach the canary; the next start retries): %w", err)
	}
	r.notes.LastCommit = commit
	evidence := release.RollbackEvidence{Timings: release.RollbackTimings{DetectedAt: v.DetectedAt, DecidedAt: decided, PushedAt: pushed, RestoredAt: restored}}
	if v.Evidence != nil {
		evidence.Detail = *v.Evidence
	}
	id, err := r.run.Release.RecordRollback(rctx, release.Rollback{SourceSHA: r.run.Trigger.SHA, Digest: r.digest,
		Trigger: v.Trigger, Actor: v.Actor, Reason: v.Reason, Weight: weight, ReleaseCommit: r.notes.ReleaseCommit,
		RollbackCommit: commit, Evidence: evidence, DetectedAt: v.DetectedAt, RestoredAt: restored})
	if err != nil {
		return stages.Result{}, fmt.Errorf("recording the rollback (traffic is back on stable): %w", err)
	}
	if err := r.move(rctx, release.Finished, r.cp.Step, 0, v.Reason); err != nil {
		return stages.Result{}, err
	}
	took := restored.Sub(v.DetectedAt).Round(10 * time.Millisecond)
	r.say("rolled back: traffic back on stable %s in %s after detection (config %.7s); slipway rollbacks show %d", r.notes.StableRef, took, commit, id)
	ev := r.event(string(release.RolledBack), fmt.Sprintf("%s rolled back at %d%%: %s; traffic back on stable in %s (slipway rollbacks show %d)", r.short(), weight, v.Reason, took, id))
	ev["rollback"] = id
	r.notify.send(ev)
	res := r.result()
	res.Outputs["rollback"] = fmt.Sprint(id)
	return res, fmt.Errorf("rolled back: %s", v.Reason)
}

// syncWatching syncs commit and, meanwhile, watches the live router: it
// returns when traffic was seen back on stable, after the sync finished.
func (r *rollout) syncWatching(ctx context.Context, commit string) (time.Time, error) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	seen := make(chan time.Time, 1)
	go func() {
		for wctx.Err() == nil {
			if w, err := r.router.VerifyWeight(wctx); err == nil && w == 0 {
				seen <- time.Now()
				return
			}
			retry.Sleep(wctx, 50*time.Millisecond)
		}
	}()
	if _, err := r.argo.SyncAndWait(ctx, r.spec.ArgoCD.App, commit, r.syncTimeout(), r.say); err != nil {
		return time.Time{}, err
	}
	select {
	case at := <-seen:
		return at, nil
	case <-time.After(100 * time.Millisecond):
		stop()
		return r.verify(ctx, 0)
	}
}

// promote gives the stable workload the new image and all traffic.
func (r *rollout) promote(ctx context.Context) (stages.Result, error) {
	if err := r.move(ctx, release.Passed, r.cp.Step, r.cp.Weight, string(release.Promoting)); err != nil {
		return stages.Result{}, err
	}
	msg := fmt.Sprintf("slipway: promote %s %s to stable\n\nPipeline: %s\nRun: %d\nSource: %s %s\nImage: %s\n",
		r.run.App, r.short(), r.run.Pipeline, r.run.ID, r.run.Trigger.Ref, r.run.Trigger.SHA, r.ref)
	stable := gitops.LocatorOf(r.spec.Stable)
	commit, err := r.apply(ctx, msg, func(root string) (bool, error) {
		return anyChanged(
			func() (bool, error) { return gitops.SetImage(root, r.spec.GitOps.Path, stable, r.image, r.digest) },
			func() (bool, error) { return r.router.SetWeight(root, 0) })
	})
	if err == nil {
		_, err = r.verify(ctx, 0)
	}
	if err != nil {
		if ctx.Err() != nil && stages.ShuttingDown(ctx) {
			return stages.Result{}, err
		}
		return r.rollback(ctx, r.failed(ctx, fmt.Errorf("promoting: %w", err)))
	}
	if err := r.move(ctx, release.Finished, r.cp.Step, 0, string(release.Promoted)); err != nil {
		return stages.Result{}, err
	}
	r.say("promoted: the stable workload runs %s and takes all traffic (config %.7s)", r.short(), commit)
	r.notify.send(r.event(string(release.Promoted), fmt.Sprintf("%s promoted to stable", r.short())))
	return r.result(), nil
}

// anyChanged runs every edit and reports whether any changed a file.
func anyChanged(edits ...func() (bool, error)) (bool, error) {
	changed := false
	for _, e := range edits {
		c, err := e()
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	return changed, nil
}

// persist runs f until it succeeds or ctx ends, backing off from 1 s to 10 s.
func persist(ctx context.Context, say func(string, ...any), what string, f func() error) error {
	b := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 10 * time.Second, Steps: math.MaxInt32}
	return retry.Retry(ctx, b, 0, func(context.Context) error { return f() }, func(err error, next time.Duration) {
		say("%s failed (%v); retrying in %s", what, err, next)
	})
}
