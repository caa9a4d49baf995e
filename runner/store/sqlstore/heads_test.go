package sqlstore

import (
	"context"
	"maps"
	"testing"
	"time"
)

// A repository's heads: none and unlisted at first; added by a listing
// where none is recorded (a head a delivery recorded stays); moved only from where they stand (or from nowhere), so a push
// known late never moves a head back; deleted only from where they stand.
func TestHeads(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		check := func(what string, want map[string]string, wantListed bool) {
			t.Helper()
			got, listed, err := s.ListHeads(ctx, "svc")
			if err != nil || !maps.Equal(got, want) || listed != wantListed {
				t.Errorf("%s: heads %v, listed %v, %v; want %v, %v", what, got, listed, err, want, wantListed)
			}
		}
		check("at first", map[string]string{}, false)
		must(t, s.MoveHead(ctx, "svc", "refs/heads/main", "", "a1", now))
		check("a delivery before any listing", map[string]string{"refs/heads/main": "a1"}, false)
		must(t, s.AddHeads(ctx, "svc", map[string]string{"refs/heads/main": "b2", "refs/tags/v1": "t1"}, now))
		check("listed", map[string]string{"refs/heads/main": "a1", "refs/tags/v1": "t1"}, true)
		must(t, s.MoveHead(ctx, "svc", "refs/heads/main", "a1", "b2", now))
		must(t, s.MoveHead(ctx, "svc", "refs/heads/main", "a1", "zz", now)) // late: main is at b2
		must(t, s.MoveHead(ctx, "svc", "refs/heads/main", "b2", "c3", now))
		must(t, s.MoveHead(ctx, "svc", "refs/heads/dev", "", "d4", now))
		must(t, s.MoveHead(ctx, "svc", "refs/tags/v1", "old", "", now)) // not where it stands
		check("moved", map[string]string{"refs/heads/main": "c3", "refs/heads/dev": "d4", "refs/tags/v1": "t1"}, true)
		must(t, s.MoveHead(ctx, "svc", "refs/tags/v1", "t1", "", now))
		check("deleted", map[string]string{"refs/heads/main": "c3", "refs/heads/dev": "d4"}, true)
		if other, listed, _ := s.ListHeads(ctx, "other"); len(other) != 0 || listed {
			t.Errorf("another repository's heads: %v %v", other, listed)
		}
	})
}
