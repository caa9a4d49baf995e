package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/server/web"
)

// The run page: summary, stages, scan report, timeline, log tail.

// LogPage is how many log lines a run page shows; older ones are a
// "load earlier" away, and the whole log is a download.
const LogPage = 500

type runBody struct {
	view.RunView
	Created     time.Time
	Took        string
	CommitURL   string
	Release     bool
	Cancellable bool
	Cancel      action
	Stages      []stageRow
	Events      []view.EventView
	Scan        *scanReport
	Log         logTail
}

type stageRow struct {
	Name, Kind, Status, Error, Took string
	Attempts                        []attemptRow
	Outputs                         []nameValue
}

type attemptRow struct {
	N                   int
	Status, Error, Took string
}

type logTail struct {
	Stage       string // "": every stage's lines
	Lines       []store.LogLine
	First, Last int64
	Earlier     bool // older lines exist
	Paged       bool // showing an older page, not the live end
}

// action is a button: enabled (a link to its confirm page) or disabled
// with the reason why.
type action struct {
	Name, Label, ConfirmURL, Reason string
}

func (u *UI) runPage(r *http.Request, who *auth.Token) (web.Page, error) {
	run, err := u.runInScopeFor(r, who, "id")
	if err != nil {
		return web.Page{}, err
	}
	ctx := r.Context()
	detail, err := u.api.RunDetail(r.Context(), run)
	if err != nil {
		return web.Page{}, err
	}
	b := runBody{RunView: detail, Created: run.CreatedAt, Took: took(run.StartedAt, run.FinishedAt), CommitURL: u.commitURL(run.Trigger),
		Events: detail.Events, Cancellable: !run.Status.Done()}
	b.Cancel = action{Name: "cancel", Label: "Cancel run", ConfirmURL: fmt.Sprintf("/runs/%d/cancel", run.ID), Reason: roleReason(who, auth.RoleReleaseManager)}
	for _, st := range detail.Stages {
		row := stageRow{Name: st.Name, Kind: st.Kind, Status: st.Status, Error: st.Error, Took: took(deref(st.StartedAt), deref(st.FinishedAt)), Outputs: sortedOutputs(st.Outputs)}
		for _, a := range st.Attempts {
			row.Attempts = append(row.Attempts, attemptRow{N: a.Attempt, Status: a.Status, Error: a.Error, Took: took(deref(a.StartedAt), deref(a.FinishedAt))})
		}
		b.Stages = append(b.Stages, row)
	}
	rels, err := u.store.ListReleases(ctx, run.App, false)
	if err != nil {
		return web.Page{}, err
	}
	b.Release = slices.ContainsFunc(rels, func(rel *store.Release) bool { return rel.RunID == run.ID })
	if b.Scan, err = u.scanReport(r, run.ID); err != nil {
		return web.Page{}, err
	}
	before, err := view.QueryInt(r, "before", 0, 1<<62)
	if err != nil {
		return web.Page{}, &uiError{http.StatusBadRequest, err.Error()}
	}
	stage := r.URL.Query().Get("stage")
	if stage != "" && !slices.ContainsFunc(detail.Stages, func(st view.StageView) bool { return st.Name == stage }) {
		return web.Page{}, &uiError{http.StatusBadRequest, fmt.Sprintf("run %d has no stage %q", run.ID, stage)}
	}
	lines, err := u.store.ReadLogsBefore(ctx, run.ID, stage, before, LogPage+1)
	if err != nil {
		return web.Page{}, err
	}
	b.Log = logTail{Paged: before > 0, Stage: stage}
	if len(lines) > LogPage {
		b.Log.Earlier, lines = true, lines[1:]
	}
	if len(lines) > 0 {
		b.Log.Lines, b.Log.First, b.Log.Last = lines, lines[0].Seq, lines[len(lines)-1].Seq
	}
	live := ""
	if !run.Status.Done() {
		live = fmt.Sprintf("/ui/events?run=%d", run.ID)
		if stage != "" {
			live += "&stage=" + url.QueryEscape(stage)
		}
	}
	return web.Page{Title: fmt.Sprintf("Run %d", run.ID), Nav: "run", Live: live, Body: b}, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// roleReason is why who may not do what needs role, or "".
func roleReason(who *auth.Token, role auth.Role) string {
	if who.Role >= role {
		return ""
	}
	return fmt.Sprintf("needs the %s role; %s has %s", role, who.Name, who.Role)
}

// scanReport is a Trivy report as a table, with its downloads.
type scanReport struct {
	Digest             string
	ReportURL, SBOMURL string
	Counts             []severityCount
	Rows               []vulnRow
}

type severityCount struct {
	Severity string
	N        int
}

type vulnRow struct {
	Severity, Package, Installed, Fixed, ID, URL, Target string
}

// trivyReport is the part of Trivy's JSON report the page shows.
type trivyReport struct {
	Results []struct {
		Target          string
		Vulnerabilities []struct {
			VulnerabilityID  string
			PkgName          string
			InstalledVersion string
			FixedVersion     string
			Severity         string
			PrimaryURL       string
		}
	}
}

var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// scanReport reads the run's last Trivy report, or nil when it has none.
func (u *UI) scanReport(r *http.Request, runID int64) (*scanReport, error) {
	arts, err := u.store.ListArtifacts(r.Context(), runID)
	if err != nil {
		return nil, err
	}
	var rep *scanReport
	sbom := ""
	for _, a := range arts {
		url := fmt.Sprintf("/api/v1/runs/%d/artifacts/%d/%s", runID, a.Index, a.Name)
		switch a.Name {
		case "trivy-report.json":
			full, err := u.store.GetArtifact(r.Context(), runID, a.Index, a.Name)
			if err != nil {
				return nil, err
			}
			rep = &scanReport{Digest: a.Subject, ReportURL: url}
			var t trivyReport
			if err := json.Unmarshal(full.Data, &t); err != nil {
				u.log.Warn("reading a stored Trivy report", "run", runID, "err", err)
			}
			n := map[string]int{}
			for _, res := range t.Results {
				for _, v := range res.Vulnerabilities {
					rep.Rows = append(rep.Rows, vulnRow{Severity: v.Severity, Package: v.PkgName, Installed: v.InstalledVersion,
						Fixed: v.FixedVersion, ID: v.VulnerabilityID, URL: safeURL(v.PrimaryURL), Target: res.Target})
					n[v.Severity]++
				}
			}
			slices.SortStableFunc(rep.Rows, func(a, b vulnRow) int {
				return slices.Index(severities, a.Severity) - slices.Index(severities, b.Severity)
			})
			for _, sev := range severities {
				if n[sev] > 0 {
					rep.Counts = append(rep.Counts, severityCount{sev, n[sev]})
				}
			}
		case "sbom.cdx.json":
			sbom = url
		}
	}
	if rep != nil {
		rep.SBOMURL = sbom
	}
	return rep, nil
}

// safeURL keeps http(s) links only: a report is data a build produced.
func safeURL(u string) string {
	if len(u) < 2048 && (len(u) > 8 && u[:8] == "https://" || len(u) > 7 && u[:7] == "http://") {
		return u
	}
	return ""
}
