// Package trivydb writes a small Trivy vulnerability database offline, in
// the layout Trivy's own test fixtures use (a bbolt file with one bucket
// per advisory source, a "vulnerability" bucket and a "data-source"
// bucket, plus metadata.json), so tests and the demo scan for real without
// downloading the public database.
package trivydb

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GoAdvisory is one Go-module advisory of the GitHub Security Advisory source.
type GoAdvisory struct {
	Module     string   // golang.org/x/text
	ID         string   // CVE-2021-38561
	Vulnerable []string // version constraints, e.g. ">= 0, < 0.3.7"
	Patched    []string // e.g. "0.3.7"
	Severity   string   // LOW, MEDIUM, HIGH, CRITICAL
	Title      string
}

// goSource is the bucket (and data-source key) of Go advisories from GHSA.
const goSource = "go::GitHub Security Advisory Go"

var severityNumber = map[string]int{"UNKNOWN": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}

// Write creates <cacheDir>/db/trivy.db and metadata.json holding advisories.
// The database says it was updated now and needs no update for a year, so
// `trivy --skip-db-update` accepts it.
func Write(cacheDir string, advisories []GoAdvisory) error {
	dir := filepath.Join(cacheDir, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "trivy.db")
	os.Remove(path)
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		src, err := tx.CreateBucketIfNotExists([]byte(goSource))
		if err != nil {
			return err
		}
		vulns, err := tx.CreateBucketIfNotExists([]byte("vulnerability"))
		if err != nil {
			return err
		}
		for _, a := range advisories {
			sev, ok := severityNumber[a.Severity]
			if !ok {
				return fmt.Errorf("advisory %s: unknown severity %q", a.ID, a.Severity)
			}
			pkg, err := src.CreateBucketIfNotExists([]byte(a.Module))
			if err != nil {
				return err
			}
			if err := putJSON(pkg, a.ID, map[string]any{"PatchedVersions": a.Patched, "VulnerableVersions": a.Vulnerable}); err != nil {
				return err
			}
			if err := putJSON(vulns, a.ID, map[string]any{"Title": a.Title, "Severity": a.Severity,
				"VendorSeverity": map[string]int{"ghsa": sev}}); err != nil {
				return err
			}
		}
		ds, err := tx.CreateBucketIfNotExists([]byte("data-source"))
		if err != nil {
			return err
		}
		return putJSON(ds, goSource, map[string]string{"ID": "ghsa", "Name": "GitHub Security Advisory Go",
			"URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Ago"})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	now := time.Now().UTC()
	meta, _ := json.Marshal(map[string]any{"Version": 2, "NextUpdate": now.Add(365 * 24 * time.Hour), "UpdatedAt": now, "DownloadedAt": now})
	return os.WriteFile(filepath.Join(dir, "metadata.json"), meta, 0o644)
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// Fixture is the advisory the tests and the demo scan for: golang.org/x/text
// before 0.3.7 (CVE-2021-38561, HIGH).
var Fixture = []GoAdvisory{{
	Module: "golang.org/x/text", ID: "CVE-2021-38561", Vulnerable: []string{">= 0, < 0.3.7"}, Patched: []string{"0.3.7"},
	Severity: "HIGH", Title: "golang: out-of-bounds read in golang.org/x/text/language leads to DoS",
}}
