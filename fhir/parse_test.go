package fhir

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// baseIncident is a valid incident that parseCase fills in: every case changes only what it
// is about.
const baseIncident = `"source":"datix","local_id":"A1","event_type":"incident","description":"Fall on the ward"`

// problemStrings renders problems as "field: message", one per entry.
func problemStrings(ps []Problem) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestParseIncidentDates covers the calendar rules of occurred_at, reported_at and
// date_of_birth: which calendar date an incident happened on, the bounds of plausible dates,
// and the tolerance for clocks and time zones.
func TestParseIncidentDates(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		fields string // JSON members added to baseIncident
		want   []string
	}{
		{"birth on the incident's local date", `"occurred_at":"2025-01-01T23:30:00-05:00","patients":[{"date_of_birth":"2025-01-01"}]`, nil},
		{"birth the day after the incident's local date, though before it in UTC",
			`"occurred_at":"2025-01-01T23:30:00-05:00","patients":[{"date_of_birth":"2025-01-02"}]`,
			[]string{"patients[0].date_of_birth: must not be after occurred_at"}},
		{"birth on the incident's local date, the day before in UTC",
			`"occurred_at":"2025-01-02T00:30:00+01:00","patients":[{"date_of_birth":"2025-01-02"}]`, nil},
		{"birth after a date-only incident", `"occurred_at":"2025-01-01","patients":[{},{"date_of_birth":"2025-01-02"}]`,
			[]string{"patients[1].date_of_birth: must not be after occurred_at"}},
		{"birth today, no incident date", `"event_type":"risk","patients":[{"date_of_birth":"2025-06-01"}]`, nil},
		{"birth tomorrow by UTC, within the clock tolerance", `"event_type":"risk","patients":[{"date_of_birth":"2025-06-02"}]`, nil},
		{"birth in the future", `"event_type":"risk","patients":[{"date_of_birth":"2025-06-03"}]`,
			[]string{"patients[0].date_of_birth: must not be in the future"}},
		{"occurred at year 1", `"occurred_at":"0001-01-01"`, []string{"occurred_at: must not be before 1900-01-01"}},
		{"occurred as a date-time in 1899", `"occurred_at":"1899-12-31T23:30:00-05:00"`, []string{"occurred_at: must not be before 1900-01-01"}},
		{"occurred on the first day accepted", `"occurred_at":"1900-01-01"`, nil},
		{"occurred within the clock tolerance", `"occurred_at":"2025-06-02T11:00:00Z"`, nil},
		{"occurred in the future", `"occurred_at":"2025-06-02T13:00:00Z"`, []string{"occurred_at: must not be in the future"}},
		{"reported at year 1", `"occurred_at":"2025-01-01","reported_at":"0001-01-01"`,
			[]string{"reported_at: must not be before 1900-01-01"}},
		{"reported within the clock tolerance", `"occurred_at":"2025-06-01","reported_at":"2025-06-02T11:00:00Z"`, nil},
		{"reported in the future", `"occurred_at":"2025-06-01","reported_at":"2025-06-02T13:00:00Z"`,
			[]string{"reported_at: must not be in the future"}},
		{"reported far in the future", `"occurred_at":"2025-06-01","reported_at":"9999-12-31"`,
			[]string{"reported_at: must not be in the future"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "{" + baseIncident + "," + tt.fields + "}"
			if strings.Contains(tt.fields, `"event_type"`) {
				body = "{" + strings.Replace(baseIncident, `"event_type":"incident",`, "", 1) + "," + tt.fields + "}"
			}
			_, ps := ParseIncident([]byte(body), ParseOptions{Now: now})
			if diff := cmp.Diff(tt.want, problemStrings(ps), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
