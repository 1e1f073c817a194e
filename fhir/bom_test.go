package fhir

import (
	"strings"
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

// TestParseIncidentNullPatient: an entry of patients (or of any list of objects) that is
// null is not a patient object (CONTRACT.md section 2: "0–100 entries of the patient object").
// The decoder made it an empty patient, so [null] was accepted without a word and sent
// nationally as one patient with nothing known.
func TestParseIncidentNullPatient(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		members string
		want    []string
	}{
		{`"patients":[null]`, []string{"patients[0]: must be an object, not null: leave the entry out of the list instead"}},
		{`"patients":[{"sex":"male"}, null]`, []string{"patients[1]: must be an object, not null: leave the entry out of the list instead"}},
		{`"patients":[ null , {}]`, []string{"patients[0]: must be an object, not null: leave the entry out of the list instead"}},
		{`"patients":null`, nil},
		{`"patients":[]`, nil},
		{`"patients":[{}]`, nil},
	} {
		body := `{` + baseIncident + `,"occurred_at":"2025-01-01",` + tc.members + `}`
		_, ps := ParseIncident([]byte(body), ParseOptions{Now: now})
		if got := problemStrings(ps); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: got %q, want %q", tc.members, got, tc.want)
		}
	}
}
