package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/slipwayci/slipway/runner/store"
)

// PutArtifact stores (or replaces) an artifact.
func (s *Store) PutArtifact(ctx context.Context, a store.Artifact) error {
	_, err := s.exec(ctx, `INSERT INTO artifacts (run_id, idx, attempt, name, media_type, subject, data, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, idx, attempt, name) DO UPDATE SET
		media_type = excluded.media_type, subject = excluded.subject, data = excluded.data, created_at = excluded.created_at`,
		a.RunID, a.Index, a.Attempt, a.Name, a.MediaType, a.Subject, a.Data, micros(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("storing artifact %s of run %d: %w", a.Name, a.RunID, err)
	}
	return nil
}

func scanArtifact(withData bool) func(scanner) (store.Artifact, error) {
	return func(row scanner) (a store.Artifact, err error) {
		var at int64
		dest := []any{&a.RunID, &a.Index, &a.Attempt, &a.Name, &a.MediaType, &a.Subject, &a.Size, &at}
		if withData {
			dest = append(dest, &a.Data)
		}
		err = row.Scan(dest...)
		a.CreatedAt = fromMicros(at)
		return a, err
	}
}

const artifactColumns = `run_id, idx, attempt, name, media_type, subject, LENGTH(data), created_at`

// ListArtifacts lists a run's artifacts, without data.
func (s *Store) ListArtifacts(ctx context.Context, runID int64) ([]store.Artifact, error) {
	out, err := queryAll(ctx, s.db, scanArtifact(false), `SELECT `+artifactColumns+` FROM artifacts WHERE run_id = ? ORDER BY idx, attempt, name`, runID)
	if err != nil {
		return nil, fmt.Errorf("listing artifacts of run %d: %w", runID, err)
	}
	return out, nil
}

// GetArtifact returns the latest attempt's artifact name of stage index.
func (s *Store) GetArtifact(ctx context.Context, runID int64, index int, name string) (*store.Artifact, error) {
	a, err := scanArtifact(true)(s.db.QueryRowContext(ctx, `SELECT `+artifactColumns+`, data FROM artifacts
		WHERE run_id = ? AND idx = ? AND name = ? ORDER BY attempt DESC LIMIT 1`, runID, index, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("artifact %s of run %d: %w", name, runID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading artifact %s of run %d: %w", name, runID, err)
	}
	return &a, nil
}
