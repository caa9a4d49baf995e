package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/slipwayci/slipway/runner/store"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/view"
)

// getArtifact serves a stored artifact as a download.
func (a *API) getArtifact(w http.ResponseWriter, r *http.Request, who *auth.Token) {
	run := a.runFor(w, r, who)
	if run == nil {
		return
	}
	index, err := strconv.Atoi(r.PathValue("stage"))
	if err != nil || index < 0 || index > 10000 {
		view.Error(w, http.StatusBadRequest, "stage %q is not a stage number", r.PathValue("stage"))
		return
	}
	art, err := a.store.GetArtifact(r.Context(), run.ID, index, r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		view.Error(w, http.StatusNotFound, "run %d has no artifact %s from stage %d", run.ID, r.PathValue("name"), index)
		return
	}
	if err != nil {
		a.internal(w, "reading the artifact", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("run-%d-%s", run.ID, art.Name)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(art.Data)
}
