package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
)

// runLogs serves a run's log: as JSON pages (?after=SEQ), or with
// ?follow=1 as Server-Sent Events that end when the run ends. Each event
// carries its seq as id, so a client reconnecting with Last-Event-ID
// resumes where it stopped.
func (a *API) runLogs(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	run := a.runFor(w, r, who)
	if run == nil {
		return
	}
	after, err := view.QueryInt(r, "after", 0, 1<<62)
	if err != nil {
		view.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if r.URL.Query().Get("format") == "text" {
		a.logText(w, r, run)
		return
	}
	if r.URL.Query().Get("follow") != "1" {
		lines, err := a.store.ReadLogs(r.Context(), run.ID, after, 1000)
		if err != nil {
			a.internal(w, "reading logs", err)
			return
		}
		out := []view.LogLineView{}
		next := after
		for _, l := range lines {
			out = append(out, view.LogLine(l))
			next = l.Seq
		}
		view.JSON(w, http.StatusOK, map[string]any{"lines": out, "next": next, "done": run.Status.Done() && len(lines) < 1000})
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = strconv.ParseInt(id, 10, 64); err != nil || after < 0 {
			view.Error(w, http.StatusBadRequest, "Last-Event-ID %q is not a log sequence number", id)
			return
		}
	}
	if !a.follow(who.Name, +1, MaxFollowersPerToken) {
		w.Header().Set("Retry-After", "10")
		view.Error(w, http.StatusTooManyRequests, "token %s already follows %d logs; close one first", who.Name, MaxFollowersPerToken)
		return
	}
	defer a.follow(who.Name, -1, MaxFollowersPerToken)
	a.streamLogs(w, r, run.ID, after)
}

// MaxFollowersPerToken bounds the live log streams one token holds open.
const MaxFollowersPerToken = 16

// follow counts the live streams held under key up (+1, refused at
// limit) or down.
func (a *API) follow(key string, delta, limit int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.followers == nil {
		a.followers = map[string]int{}
	}
	if delta > 0 && a.followers[key] >= limit {
		return false
	}
	a.followers[key] += delta
	return true
}

func (a *API) streamLogs(w http.ResponseWriter, r *http.Request, id, after int64) {
	flusher := startEvents(w)
	if flusher == nil {
		return
	}
	flusher.Flush()
	err := a.engine.Follow(r.Context(), id, after, func(l store.LogLine) error {
		b, _ := json.Marshal(view.LogLine(l))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", l.Seq, b); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	})
	if err != nil {
		return // the client went away, or the engine is stopping
	}
	run, err := a.store.GetRun(r.Context(), id)
	if err != nil {
		return
	}
	b, _ := json.Marshal(map[string]string{"status": string(run.Status), "reason": run.Reason})
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	flusher.Flush()
}

// logText serves a run's whole log as a text file, read page by page.
func (a *API) logText(w http.ResponseWriter, r *http.Request, run *store.Run) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"run-%d.log\"", run.ID))
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	for after := int64(0); ; {
		lines, err := a.store.ReadLogs(r.Context(), run.ID, after, 1000)
		if err != nil {
			a.log.Error("reading logs for a download", "run", run.ID, "err", err)
			fmt.Fprintf(bw, "\n[the log could not be read past line %d; see the engine log]\n", after)
			return
		}
		for _, l := range lines {
			fmt.Fprintf(bw, "%s [%s] %s\n", l.Time.UTC().Format("15:04:05.000"), l.Stage, l.Text)
			after = l.Seq
		}
		if len(lines) < 1000 {
			return
		}
	}
}

// startEvents answers 200 with the headers of a Server-Sent Events
// stream and returns its flusher, or answers 500 and returns nil when the
// connection cannot stream.
func startEvents(w http.ResponseWriter) http.Flusher {
	flusher, ok := w.(http.Flusher)
	if !ok {
		view.Error(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return nil
	}
	// A stream lasts as long as its reader wants: the deadlines every
	// other request has (withDeadlines) are lifted.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return flusher
}
