package view

import (
	"time"

	"github.com/slipwayci/slipway/release"
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

// LogLine is l as the API shows it.
func LogLine(l store.LogLine) LogLineView {
	return LogLineView{Seq: l.Seq, Stage: l.Stage, Attempt: l.Attempt, Time: l.Time, Text: l.Text}
}

// ReleaseView is a release's checkpoint as the API shows it.
type ReleaseView struct {
	Run     int64         `json:"run"`
	App     string        `json:"app"`
	State   release.State `json:"state"`
	Step    int           `json:"step"`
	Weight  int           `json:"weight"`
	Reason  string        `json:"reason"`
	Updated time.Time     `json:"updated"`
}

// Release is rel as the API shows it (its steps counted from 1).
func Release(rel *store.Release) ReleaseView {
	return ReleaseView{Run: rel.RunID, App: rel.App, State: rel.State, Step: rel.Step + 1, Weight: rel.Weight, Reason: rel.Reason, Updated: rel.UpdatedAt}
}

// RollbackView is a rollback record as the API shows it; Measurements are
// all of the release's measurements (the deciding ones are in Evidence).
type RollbackView struct {
	ID             int64                    `json:"id"`
	Run            int64                    `json:"run"`
	App            string                   `json:"app"`
	SourceSHA      string                   `json:"sourceSha"`
	Digest         string                   `json:"digest"`
	Trigger        string                   `json:"trigger"`
	Actor          string                   `json:"actor,omitempty"`
	Reason         string                   `json:"reason"`
	Weight         int                      `json:"weight"`
	ReleaseCommit  string                   `json:"releaseCommit"`
	RollbackCommit string                   `json:"rollbackCommit"`
	DetectedAt     time.Time                `json:"detectedAt"`
	RestoredAt     time.Time                `json:"restoredAt"`
	Evidence       release.RollbackEvidence `json:"evidence"`
	Measurements   []store.Measurement      `json:"measurements,omitempty"`
}

// Rollback is the API's view of a stored rollback.
func Rollback(rb *store.Rollback) RollbackView {
	return RollbackView{ID: rb.ID, Run: rb.RunID, App: rb.App, SourceSHA: rb.SourceSHA, Digest: rb.Digest, Trigger: rb.Trigger,
		Actor: rb.Actor, Reason: rb.Reason, Weight: rb.Weight, ReleaseCommit: rb.ReleaseCommit, RollbackCommit: rb.RollbackCommit,
		DetectedAt: rb.DetectedAt, RestoredAt: rb.RestoredAt, Evidence: rb.Evidence}
}
