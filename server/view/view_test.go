package view

import (
	"testing"

	"github.com/slipwayci/slipway/runner/store"
)

// A run says where its pipeline was read from: a pushed file by its
// repository, path and commit; the operator's by its name alone.
func TestARunSaysWhereItsPipelineWasRead(t *testing.T) {
	t.Parallel()
	pushed := sourceView(&store.Run{Untrusted: true, PipelineFile: "https://git.example.com/shop.git:.slipway.yaml@abc1234",
		Trigger: store.Trigger{Repo: "https://git.example.com/shop.git"}})
	if pushed != (SourceView{Pushed: true, File: "https://git.example.com/shop.git:.slipway.yaml@abc1234", Repo: "https://git.example.com/shop.git"}) {
		t.Errorf("a pushed pipeline's source = %+v", pushed)
	}
	if op := sourceView(&store.Run{PipelineFile: "/etc/slipway/pipelines/shop.yaml"}); op != (SourceView{File: "shop.yaml"}) {
		t.Errorf("the operator's pipeline's source = %+v", op)
	}
}
