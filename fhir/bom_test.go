package fhir

import (
	"testing"
	"time"
)

// TestParseIncidentByteOrderMark: one leading UTF-8 byte order mark, which RFC 8259 lets a
// reader ignore and some Windows JSON writers emit, is read past (CONTRACT.md section 2, and
// `psgw map` of section 1, read the same incident); a second is not JSON.
func TestParseIncidentByteOrderMark(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	body := `{` + baseIncident + `,"occurred_at":"2025-01-01"}`
	if in, ps := ParseIncident([]byte("\ufeff"+body), ParseOptions{Now: now}); len(ps) != 0 || in == nil || in.LocalID != "A1" {
		t.Errorf("one byte order mark: got %v", problemStrings(ps))
	}
	if _, ps := ParseIncident([]byte("\ufeff\ufeff"+body), ParseOptions{Now: now}); len(ps) == 0 {
		t.Error("two byte order marks: accepted, want a problem")
	}
}
