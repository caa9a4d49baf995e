package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// LogLineView is one log line as the API shows it.
type LogLineView struct {
	Seq     int64     `json:"seq"`
	Stage   string    `json:"stage"`
	Attempt int       `json:"attempt"`
	Time    time.Time `json:"time"`
	Text    string    `json:"text"`
}

func logView(l store.LogLine) LogLineView {
	return LogLineView{Seq: l.Seq, Stage: l.Stage, Attempt: l.Attempt, Time: l.Time, Text: l.Text}
}

// runLogs serves a run's log: as JSON pages (?after=SEQ), or with
// ?follow=1 as Server-Sent Events that end when the run ends. Each event
// carries its seq as id, so a client reconnecting with Last-Event-ID
// resumes where it stopped.
func (s *Server) runLogs(w http.ResponseWriter, r *http.Request, who *Token) {
	run := s.runFor(w, r, who)
	if run == nil {
		return
	}
	after, err := queryInt(r, "after", 0, 1<<62)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if r.URL.Query().Get("format") == "text" {
		s.logText(w, r, run)
		return
	}
	if r.URL.Query().Get("follow") != "1" {
		lines, err := s.store.ReadLogs(r.Context(), run.ID, after, 1000)
		if err != nil {
			s.internal(w, "reading logs", err)
			return
		}
		out := []LogLineView{}
		next := after
		for _, l := range lines {
			out = append(out, logView(l))
			next = l.Seq
		}
		writeJSON(w, http.StatusOK, map[string]any{"lines": out, "next": next, "done": run.Status.Done() && len(lines) < 1000})
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = strconv.ParseInt(id, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, "Last-Event-ID %q is not a log sequence number", id)
			return
		}
	}
	if !s.follow(who.Name, +1, MaxFollowersPerToken) {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "token %s already follows %d logs; close one first", who.Name, MaxFollowersPerToken)
		return
	}
	defer s.follow(who.Name, -1, MaxFollowersPerToken)
	s.streamLogs(w, r, run.ID, after)
}

// MaxFollowersPerToken bounds the live log streams one token holds open.
const MaxFollowersPerToken = 16

// follow counts the live streams held under key up (+1, refused at
// limit) or down.
func (s *Server) follow(key string, delta, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.followers == nil {
		s.followers = map[string]int{}
	}
	if delta > 0 && s.followers[key] >= limit {
		return false
	}
	s.followers[key] += delta
	return true
}

func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request, id, after int64) {
	flusher := startEvents(w)
	if flusher == nil {
		return
	}
	flusher.Flush()
	err := s.engine.Follow(r.Context(), id, after, func(l store.LogLine) error {
		b, _ := json.Marshal(logView(l))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: log\ndata: %s\n\n", l.Seq, b); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	})
	if err != nil {
		return // the client went away, or the engine is stopping
	}
	run, err := s.store.GetRun(r.Context(), id)
	if err != nil {
		return
	}
	b, _ := json.Marshal(map[string]string{"status": string(run.Status), "reason": run.Reason})
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
	flusher.Flush()
}

// logText serves a run's whole log as a text file, read page by page.
func (s *Server) logText(w http.ResponseWriter, r *http.Request, run *store.Run) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"run-%d.log\"", run.ID))
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	for after := int64(0); ; {
		lines, err := s.store.ReadLogs(r.Context(), run.ID, after, 1000)
		if err != nil {
			s.log.Error("reading logs for a download", "run", run.ID, "err", err)
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
		writeError(w, http.StatusInternalServerError, "streaming is not supported by this connection")
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
