package forgestatus

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// maxDescription is GitHub's limit on a status description, the
// strictest of the three forges.
const maxDescription = 140

// Describe is the status run says about its commit now: its state, a
// line of words, a link to its page at baseURL.
func Describe(run *store.Run, stages []*store.Stage, baseURL string) Status {
	s := Status{SHA: run.Trigger.SHA, Context: "slipway/" + run.Pipeline, TargetURL: fmt.Sprintf("%s/runs/%d", baseURL, run.ID)}
	switch run.Status {
	case store.RunQueued:
		s.State, s.Description = Pending, "queued"
	case store.RunRunning:
		s.State, s.Description = Running, "running"
		for i, st := range stages {
			if st.Status == store.StageRunning {
				s.Description = fmt.Sprintf("running %s (stage %d of %d)", st.Name, i+1, len(stages))
			}
		}
	case store.RunSucceeded:
		s.State, s.Description = Success, "succeeded in "+took(run)
		for _, st := range stages {
			if st.Outputs["outcome"] == string(release.Promoted) {
				s.Description = "canary promoted to 100 %, in " + took(run)
			}
		}
	case store.RunFailed:
		s.State, s.Description = Failure, failure(run.Reason)
	default:
		s.State, s.Description = Error, string(run.Status)+": "+run.Reason
	}
	s.Description = oneLine(s.Description)
	return s
}

// failure is a failed run's reason, most telling first: "stage canary
// failed: rolled back: …" reads "canary: rolled back: …".
func failure(reason string) string {
	if rest, ok := strings.CutPrefix(reason, "stage "); ok {
		if name, why, ok := strings.Cut(rest, " failed: "); ok && !strings.Contains(name, " ") {
			return name + ": " + why
		}
	}
	return reason
}

// took is how long the run ran, for people.
func took(run *store.Run) string {
	if run.StartedAt.IsZero() || run.FinishedAt.Before(run.StartedAt) {
		return "no time"
	}
	return run.FinishedAt.Sub(run.StartedAt).Round(time.Second).String()
}

// oneLine is s on one line, at most maxDescription characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxDescription {
		return s
	}
	r := []rune(s)
	return string(r[:maxDescription-1]) + "…"
}
