package triggers

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Deliveries a real Gitea (v1.27, integration/gitea_test.go with
// SLIPWAY_RECORD_GITEA) sent: the first push of a branch (before is all
// zeros), a branch's push, a tag's push, its "Test Delivery" (a push of
// main's head that moved nothing: a ping), and the create and delete
// events it sends when a hook subscribes to them — which start nothing
// and say why.
func TestRealGiteaDeliveries(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file, event, kind, ref, reason string
		path                           string
	}{
		{"gitea-real-push.json", "push", KindPush, "refs/heads/main", "", ".slipway/pipeline.yaml"},
		{"gitea-real-push-branch.json", "push", KindPush, "refs/heads/feature", "", "README"},
		{"gitea-real-push-tag.json", "push", KindTag, "refs/tags/v1.0.0", "", ""},
		{"gitea-real-test-delivery.json", "push", KindPing, "refs/heads/main", "a test delivery: before and after are the same commit, no ref moved", ""},
		{"gitea-real-create.json", "create", KindIgnored, "", "Gitea create events do not start pipelines", ""},
		{"gitea-real-delete.json", "delete", KindIgnored, "", "Gitea delete events do not start pipelines", ""},
	} {
		h := http.Header{"X-Gitea-Event": {tt.event}, "Content-Type": {"application/json"}}
		ev, err := Gitea{}.Parse(h, fixture(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if ev.Kind != tt.kind || ev.Ref != tt.ref || ev.Reason != tt.reason || ev.RepoName != "shop/web" {
			t.Errorf("%s: %+v", tt.file, ev)
		}
		if !slices.ContainsFunc(ev.RepoURLs, func(u string) bool { return strings.HasSuffix(u, "/shop/web.git") }) {
			t.Errorf("%s: repository URLs %v", tt.file, ev.RepoURLs)
		}
		if tt.kind == KindPush && (len(ev.After) != 40 || ev.Deleted || !slices.Contains(ev.Paths, tt.path) || ev.Pusher != "slipway-admin") {
			t.Errorf("%s: push %+v", tt.file, ev)
		}
	}
}
