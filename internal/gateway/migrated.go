package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// MigratedFile is the file `psgw migrate` leaves in the data directory it copied to a
// cluster. The embedded store still holds every incident that was pending when it was copied;
// a gateway started on it again, beside the one on the cluster, would send each of them a
// second time, so Start refuses it (docs/cluster.md, "Moving an existing install").
const MigratedFile = "migrated.json"

// Migrated says where and when a data directory was migrated.
type Migrated struct {
	// To is the target's URLs, credentials removed.
	To       string    `json:"to"`
	Replicas int       `json:"replicas"`
	At       time.Time `json:"at"`
}

// WriteMigrated records in dataDir that its store was copied to m.To.
func WriteMigrated(dataDir string, m Migrated) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, MigratedFile), append(b, '\n'), 0o640)
}

// ReadMigrated reads what WriteMigrated wrote in dataDir; ok is false when it wrote nothing.
func ReadMigrated(dataDir string) (m Migrated, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, MigratedFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, true, fmt.Errorf("%s: %w", filepath.Join(dataDir, MigratedFile), err)
	}
	return m, true, nil
}

// checkNotMigrated refuses to run on an embedded store `psgw migrate` has copied.
func checkNotMigrated(dataDir string) error {
	m, ok, err := ReadMigrated(dataDir)
	if err != nil || !ok {
		return err
	}
	return fmt.Errorf("data_dir %s was migrated to the cluster at %s (%d replicas) on %s: run psgw with queue.nats_url and queue.replicas set to it; this copy would send its pending incidents a second time. Only if the cluster was never used, remove %s to run on this data directory again",
		dataDir, m.To, m.Replicas, m.At.Format(time.RFC3339), filepath.Join(dataDir, MigratedFile))
}
