// Package view is how the engine shows what it holds, the same to every
// face: the JSON API's shapes of runs, stages, log lines, deliveries and
// rollbacks (the CLI decodes them), the sentences that explain a
// rollback, and the API's JSON answers and errors.
package view

import (
	"path"
	"path/filepath"
	"time"

	"github.com/slipwayci/slipway/runner/store"
)

// RunView is a run as the API shows it.
type RunView struct {
	ID         int64         `json:"id"`
	Pipeline   string        `json:"pipeline"`
	App        string        `json:"app"`
	Status     string        `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Trigger    store.Trigger `json:"trigger"`
	Source     SourceView    `json:"source"`
	Group      string        `json:"group,omitempty"`
	Resumes    int           `json:"resumes,omitempty"`
	CreatedAt  time.Time     `json:"createdAt"`
	StartedAt  *time.Time    `json:"startedAt,omitempty"`
	FinishedAt *time.Time    `json:"finishedAt,omitempty"`
	Stages     []StageView   `json:"stages,omitempty"`
	Events     []EventView   `json:"events,omitempty"`
}

// SourceView is where a run's pipeline was read from: a pipeline's name
// says which one only together with it (two repositories may push
// pipelines of the same name).
type SourceView struct {
	// Pushed: read from the repository at the commit (anyone with push
	// access wrote it); File is then the repository's URL, the path in it
	// and the commit. Otherwise the operator's file beside the engine
	// config, by its name.
	Pushed bool   `json:"pushed"`
	File   string `json:"file"`
	Repo   string `json:"repository,omitempty"` // the repository whose push, schedule or trigger started the run
}

// sourceView is r's source; an operator's file by its name only (where
// the engine keeps its config is not the API's to say).
func sourceView(r *store.Run) SourceView {
	if r.Untrusted {
		return SourceView{Pushed: true, File: r.PipelineFile, Repo: r.Trigger.Repo}
	}
	return SourceView{File: path.Base(filepath.ToSlash(r.PipelineFile)), Repo: r.Trigger.Repo}
}

// StageView is a stage with its attempts.
type StageView struct {
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Status     string            `json:"status"`
	Error      string            `json:"error,omitempty"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	StartedAt  *time.Time        `json:"startedAt,omitempty"`
	FinishedAt *time.Time        `json:"finishedAt,omitempty"`
	Attempts   []AttemptView     `json:"attempts"`
}

// AttemptView is one attempt of a stage.
type AttemptView struct {
	Attempt    int        `json:"attempt"`
	Status     string     `json:"status"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// EventView is one entry of a run's timeline.
type EventView struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message,omitempty"`
}

// DeliveryView is a webhook delivery and what it started (or why not).
type DeliveryView struct {
	Forge      string        `json:"forge"`
	ID         string        `json:"id"`
	ReceivedAt time.Time     `json:"receivedAt"`
	Event      string        `json:"event"`
	Repo       string        `json:"repo"`
	Ref        string        `json:"ref,omitempty"`
	SHA        string        `json:"sha,omitempty"`
	Status     string        `json:"status"`
	Reason     string        `json:"reason,omitempty"`
	Matches    []store.Match `json:"matches"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Run is r as the API shows it (without its stages and timeline).
func Run(r *store.Run) RunView {
	return RunView{ID: r.ID, Pipeline: r.Pipeline, App: r.App, Status: string(r.Status), Reason: r.Reason,
		Trigger: r.Trigger, Source: sourceView(r), Group: r.Group, Resumes: r.Resumes, CreatedAt: r.CreatedAt,
		StartedAt: optTime(r.StartedAt), FinishedAt: optTime(r.FinishedAt)}
}

// Detail is run with its stages, attempts and timeline.
func Detail(run *store.Run, stages []*store.Stage, attempts []*store.Attempt, events []store.Event) RunView {
	v := Run(run)
	for _, st := range stages {
		sv := StageView{Name: st.Name, Kind: st.Kind, Status: string(st.Status), Error: st.Error, Outputs: st.Outputs,
			StartedAt: optTime(st.StartedAt), FinishedAt: optTime(st.FinishedAt), Attempts: []AttemptView{}}
		for _, a := range attempts {
			if a.Index == st.Index {
				sv.Attempts = append(sv.Attempts, AttemptView{Attempt: a.Attempt, Status: string(a.Status), Error: a.Error,
					StartedAt: optTime(a.StartedAt), FinishedAt: optTime(a.FinishedAt)})
			}
		}
		v.Stages = append(v.Stages, sv)
	}
	for _, e := range events {
		v.Events = append(v.Events, EventView{Time: e.Time, Kind: e.Kind, Message: e.Message})
	}
	return v
}

// Delivery is d as the API shows it.
func Delivery(d *store.Delivery) DeliveryView {
	m := d.Matches
	if m == nil {
		m = []store.Match{}
	}
	return DeliveryView{Forge: d.Forge, ID: d.ID, ReceivedAt: d.ReceivedAt, Event: d.Event, Repo: d.Repo, Ref: d.Ref,
		SHA: d.SHA, Status: d.Status, Reason: d.Reason, Matches: m}
}
