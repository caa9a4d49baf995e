package pipeline

import (
	"strings"
	"testing"
)

func TestMatchPush(t *testing.T) {
	t.Parallel()
	p, err := Load("../configs/examples/order-service.yaml") // branches [main], paths services/order/**
	if err != nil {
		t.Fatal(err)
	}
	g, err := Load("../configs/examples/gateway-api.yaml") // branches [main, release/*], tags [v*]
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p      *Pipeline
		ref    string
		paths  []string
		want   bool
		reason string
	}{
		{p, "refs/heads/main", []string{"services/order/main.go"}, true, ""},
		{p, "refs/heads/main", nil, true, ""},
		{p, "refs/heads/main", []string{"docs/x.md", "services/user/a.go"}, false, "none of the 2 changed paths matches"},
		{p, "refs/heads/feature/x", []string{"services/order/main.go"}, false, "branch feature/x matches none of [main]"},
		{p, "refs/tags/v1.0.0", nil, false, "tag v1.0.0: the push trigger lists no tags"},
		{g, "refs/tags/v1.0.0", nil, true, ""},
		{g, "refs/tags/nightly", nil, false, "tag nightly matches none of [v*]"},
		{g, "refs/heads/release/2.1", nil, true, ""},
		{g, "refs/pull/1/head", nil, false, "neither a branch nor a tag"},
	}
	for _, tt := range tests {
		ok, reason := tt.p.MatchPush(tt.ref, tt.paths)
		if ok != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("%s MatchPush(%s, %v) = %v %q, want %v %q", tt.p.Metadata.Name, tt.ref, tt.paths, ok, reason, tt.want, tt.reason)
		}
	}
}

func TestStageRuns(t *testing.T) {
	t.Parallel()
	s := Stage{When: &When{Branches: []string{"main", "release/*"}, Events: []string{EventPush, EventManual}}}
	tests := []struct {
		event, branch string
		want          bool
	}{
		{EventPush, "main", true},
		{EventManual, "release/1", true},
		{EventSchedule, "main", false},
		{EventPush, "dev", false},
		{EventTag, "", false},
	}
	for _, tt := range tests {
		if got := s.Runs(tt.event, tt.branch); got != tt.want {
			t.Errorf("Runs(%s, %q) = %v, want %v", tt.event, tt.branch, got, tt.want)
		}
	}
	if !(&Stage{}).Runs(EventTag, "") {
		t.Error("a stage without when must always run")
	}
}
