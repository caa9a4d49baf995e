package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// listedMark is the ref of the row that says a repository was listed.
const listedMark = ""

// ListHeads returns the heads last seen of repo (store.Heads).
func (s *Store) ListHeads(ctx context.Context, repo string) (map[string]string, bool, error) {
	type head struct{ ref, sha string }
	rows, err := queryAll(ctx, s.db, func(row scanner) (h head, err error) { return h, row.Scan(&h.ref, &h.sha) },
		`SELECT ref, sha FROM heads WHERE repo = ?`, repo)
	if err != nil {
		return nil, false, fmt.Errorf("reading the heads of %s: %w", repo, err)
	}
	heads, listed := map[string]string{}, false
	for _, h := range rows {
		if h.ref == listedMark {
			listed = true
			continue
		}
		heads[h.ref] = h.sha
	}
	return heads, listed, nil
}

// AddHeads records the heads of refs with none, and marks repo listed.
func (s *Store) AddHeads(ctx context.Context, repo string, heads map[string]string, at time.Time) error {
	err := s.tx(ctx, func(tx txn) error {
		all := map[string]string{listedMark: ""}
		maps.Copy(all, heads)
		for ref, sha := range all {
			if _, err := tx.ExecContext(ctx, `INSERT INTO heads (repo, ref, sha, seen_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (repo, ref) DO NOTHING`, repo, ref, sha, micros(at)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the heads of %s: %w", repo, err)
	}
	return nil
}

// MoveHead moves ref of repo from before to after, if it stands at before
// or nowhere.
func (s *Store) MoveHead(ctx context.Context, repo, ref, before, after string, at time.Time) error {
	var err error
	if after == "" {
		_, err = s.exec(ctx, `DELETE FROM heads WHERE repo = ? AND ref = ? AND sha = ?`, repo, ref, before)
	} else {
		_, err = s.exec(ctx, `INSERT INTO heads (repo, ref, sha, seen_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo, ref) DO UPDATE SET sha = excluded.sha, seen_at = excluded.seen_at WHERE heads.sha = ?`,
			repo, ref, after, micros(at), before)
	}
	if err != nil {
		return fmt.Errorf("moving head %s of %s: %w", ref, repo, err)
	}
	return nil
}
