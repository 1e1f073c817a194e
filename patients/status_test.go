package patients_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/psgw/psgw/patients"
)

// TestStatusFieldNames pins the JSON names that the status page and the API read.
func TestStatusFieldNames(t *testing.T) {
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	st := patients.Status{
		Running: true, StartedAt: at, StoppedAt: at,
		Applied: 1, AppliedSeq: 1, LastAppliedAt: at, Pending: 1,
		Skipped: 1, LastSkipReason: "r", LastSkippedSeq: 1, LastSkippedAt: at,
		Failures: 1, RetryingSeq: 1, RetryingSince: at, LastError: "e", LastErrorAt: at,
		UnreadableEntries: 1, Enriched: 1, WaitTimeouts: 1, WaitsSkippedNotRunning: 1, AmbiguousLookups: 1,
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{
		"ambiguous_lookups", "applied", "applied_seq", "enriched", "failures", "last_applied_at",
		"last_error", "last_error_at", "last_skip_reason", "last_skipped_at", "last_skipped_seq",
		"pending", "retrying_seq", "retrying_since", "running", "skipped", "started_at", "stopped_at",
		"unreadable_entries", "wait_timeouts", "waits_skipped_not_running",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status JSON names (-want +got):\n%s", diff)
	}
}
