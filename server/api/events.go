package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
)

// The UI's live stream: one Server-Sent Events connection per browser tab
// carries everything its page needs — the run's log lines as they are
// written ("log") and a "changed" event whenever what the page shows has
// changed (the page then re-reads itself once). Every event carries the
// last log sequence number as its id, so a reconnect with Last-Event-ID
// (or ?after=) resumes without a gap or a repeat. A comment line every
// HeartbeatEvery keeps proxies from closing an idle stream.

// HeartbeatEvery is how often an idle stream sends a comment.
const HeartbeatEvery = 15 * time.Second

// watchEvery is how often a stream looks for changes to what its page shows.
const watchEvery = time.Second

// MaxStreamsPerSession bounds the streams one browser session holds open
// (a tab each; browsers allow six connections per origin), and
// MaxStreamsPerToken those of all the sessions of one token: sessions are
// free to make, so the bound per session alone bounds nothing.
const (
	MaxStreamsPerSession = 4
	MaxStreamsPerToken   = 16
)

func (a *API) events(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	q := r.URL.Query()
	var runID, releaseID int64
	var err error
	for _, p := range []struct {
		name string
		to   *int64
	}{{"run", &runID}, {"release", &releaseID}} {
		if v := q.Get(p.name); v != "" {
			if *p.to, err = strconv.ParseInt(v, 10, 64); err != nil || *p.to <= 0 {
				view.Error(w, http.StatusBadRequest, "%s=%q is not a positive number", p.name, v)
				return
			}
		}
	}
	after, err := view.QueryInt(r, "after", 0, 1<<62)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = strconv.ParseInt(id, 10, 64); err != nil || after < 0 {
			view.Error(w, http.StatusBadRequest, "Last-Event-ID %q is not a log sequence number", id)
			return
		}
	}
	for _, id := range []int64{runID, releaseID} {
		if id != 0 && !a.RunInScope(r.Context(), who, id) {
			view.Error(w, http.StatusNotFound, "run %d not found", id)
			return
		}
	}
	key := "stream:" + who.Name
	if _, sess := a.guard.Caller(r); sess != nil {
		key = "session:" + sess.ID
	}
	if !a.follow(key, +1, MaxStreamsPerSession) {
		w.Header().Set("Retry-After", "10")
		view.Error(w, http.StatusTooManyRequests, "this session already has %d live streams open; close a tab", MaxStreamsPerSession)
		return
	}
	defer a.follow(key, -1, MaxStreamsPerSession)
	tokenKey := "streams:" + who.Name
	if !a.follow(tokenKey, +1, MaxStreamsPerToken) {
		w.Header().Set("Retry-After", "10")
		view.Error(w, http.StatusTooManyRequests, "token %s already has %d live streams open in its sessions; close some tabs", who.Name, MaxStreamsPerToken)
		return
	}
	defer a.follow(tokenKey, -1, MaxStreamsPerToken)
	a.stream(w, r, who, streamOf{run: runID, release: releaseID, stage: q.Get("stage")}, after)
}

// streamOf is what one tab's stream follows: a run's log (of one stage,
// unless stage is ""), a release, or neither (a page of lists).
type streamOf struct {
	run, release int64
	stage        string
}

// stream runs one tab's stream until the client goes away.
func (a *API) stream(w http.ResponseWriter, r *http.Request, who *auth.Token, of streamOf, after int64) {
	runID, releaseID := of.run, of.release
	flusher := startEvents(w)
	if flusher == nil {
		return
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	lines := make(chan store.LogLine, 256)
	logDone := make(chan struct{})
	if runID != 0 {
		go func() {
			defer close(logDone)
			a.engine.Follow(ctx, runID, after, func(l store.LogLine) error {
				select {
				case lines <- l:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}()
	}
	last := after
	send := func(event, data string) bool {
		_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", last, event, data)
		flusher.Flush()
		return err == nil
	}
	sendLine := func(l store.LogLine) bool {
		last = l.Seq
		if of.stage != "" && l.Stage != of.stage {
			return true
		}
		b, _ := json.Marshal(view.LogLine(l))
		return send("log", string(b))
	}
	seen := a.fingerprint(ctx, who, runID, releaseID)
	watch := time.NewTicker(watchEvery)
	defer watch.Stop()
	beat := time.NewTicker(a.heartbeat())
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-lines:
			if !sendLine(l) {
				return
			}
		case <-logDone:
			logDone = nil // the run ended: its log is complete; changes still flow
			for drained := false; !drained; {
				select {
				case l := <-lines:
					if !sendLine(l) {
						return
					}
				default:
					drained = true
				}
			}
			if !send("changed", `{"what":"run ended"}`) {
				return
			}
		case <-watch.C:
			if fp := a.fingerprint(ctx, who, runID, releaseID); fp != seen {
				seen = fp
				if !send("changed", "{}") {
					return
				}
			}
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

// fingerprint sums up what a page shows that changes without a log line:
// the run's and its stages' states, the release's checkpoint and its
// measurement count, and (on pages about no run) the releases in flight
// and the newest runs.
func (a *API) fingerprint(ctx context.Context, who *auth.Token, runID, releaseID int64) string {
	h := sha256.New()
	put := func(v any) { b, _ := json.Marshal(v); h.Write(b) }
	for _, id := range []int64{runID, releaseID} {
		if id == 0 {
			continue
		}
		run, err := a.store.GetRun(ctx, id)
		if err != nil {
			return "error"
		}
		put(run.Status)
		stages, _ := a.store.ListStages(ctx, id)
		for _, st := range stages {
			put([]string{string(st.Status), st.Error})
		}
		rels, _ := a.store.ListReleases(ctx, run.App, false)
		for _, rel := range rels {
			if rel.RunID == id {
				put(rel)
			}
		}
		ms, _ := a.store.ListMeasurements(ctx, id)
		put(len(ms))
	}
	if runID == 0 && releaseID == 0 {
		rels, _ := a.store.ListReleases(ctx, "", true)
		for _, rel := range rels {
			if who.MayAccess(rel.App) {
				put(rel)
			}
		}
		runs, _ := a.store.ListRuns(ctx, store.RunFilter{Limit: 30})
		for _, run := range runs {
			if who.MayAccess(run.App) {
				put([]any{run.ID, run.Status})
			}
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// heartbeat is HeartbeatEvery, or what a test set.
func (a *API) heartbeat() time.Duration {
	if d := time.Duration(a.heartbeatEvery.Load()); d > 0 {
		return d
	}
	return HeartbeatEvery
}
