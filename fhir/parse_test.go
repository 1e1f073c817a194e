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
		// The incident's date is its UK calendar date, whatever offset it was written in.
		{"birth on the incident's UK date, the day after its date as written",
			`"occurred_at":"2025-01-01T23:30:00-05:00","patients":[{"date_of_birth":"2025-01-02"}]`, nil},
		{"birth the day after the incident's UK date",
			`"occurred_at":"2025-01-01T23:30:00-05:00","patients":[{"date_of_birth":"2025-01-03"}]`,
			[]string{"patients[0].date_of_birth: must not be after occurred_at"}},
		{"neonate born at 00:30 BST, incident sent in UTC on the evening before by the UTC date",
			`"occurred_at":"2025-05-31T23:45:00Z","patients":[{"date_of_birth":"2025-06-01"}]`, nil},
		{"birth after an incident written ahead of the UK",
			`"occurred_at":"2025-01-02T00:30:00+01:00","patients":[{"date_of_birth":"2025-01-02"}]`,
			[]string{"patients[0].date_of_birth: must not be after occurred_at"}},
		{"birth after a date-only incident", `"occurred_at":"2025-01-01","patients":[{},{"date_of_birth":"2025-01-02"}]`,
			[]string{"patients[1].date_of_birth: must not be after occurred_at"}},
		{"birth today, no incident date", `"event_type":"risk","patients":[{"date_of_birth":"2025-06-01"}]`, nil},
		{"birth tomorrow by UTC, within the clock tolerance", `"event_type":"risk","patients":[{"date_of_birth":"2025-06-02"}]`, nil},
		{"birth in the future", `"event_type":"risk","patients":[{"date_of_birth":"2025-06-03"}]`,
			[]string{"patients[0].date_of_birth: must not be in the future"}},
		{"occurred at year 1", `"occurred_at":"0001-01-01"`, []string{"occurred_at: must not be before 1900-01-01"}},
		{"occurred as a date-time in 1899", `"occurred_at":"1899-12-31T23:30:00Z"`, []string{"occurred_at: must not be before 1900-01-01"}},
		{"occurred in 1899 as written, 1900 in the UK", `"occurred_at":"1899-12-31T23:30:00-05:00"`, nil},
		{"birth long ago is the builder's to judge", `"occurred_at":"2025-01-01","patients":[{"date_of_birth":"1066-10-14"}]`, nil},
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

// TestParseIncidentTypeErrors checks that every value of the wrong JSON type is reported,
// each with its full path, and that a field sent with the wrong type is not also called
// missing.
func TestParseIncidentTypeErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"every core field mistyped",
			`{"source":1,"local_id":2,"event_type":true,"occurred_at":20250314,"description":["x"]}`,
			[]string{
				"source: must be a string",
				"local_id: must be a string",
				"event_type: must be a string",
				"occurred_at: must be a string",
				"description: must be a string",
			}},
		{"indexed paths",
			`{` + baseIncident + `,"occurred_at":"2025-03-14","patients":[{"sex":"male"},{"sex":1,"age_years":"3"},{"date_of_birth":false}]}`,
			[]string{
				"patients[1].age_years: must be a whole number",
				"patients[1].sex: must be a string",
				"patients[2].date_of_birth: must be a string",
			}},
		{"mistyped and missing fields both reported",
			`{"source":"datix","local_id":7,"event_type":"risk"}`,
			[]string{"local_id: must be a string", "description: is required"}},
		{"revision not a whole number", `{` + baseIncident + `,"occurred_at":"2025-03-14","revision":1.5}`,
			[]string{"revision: must be a whole number"}},
		{"revision as text", `{` + baseIncident + `,"occurred_at":"2025-03-14","revision":"2"}`,
			[]string{"revision: must be a whole number"}},
		{"revision too large", `{` + baseIncident + `,"occurred_at":"2025-03-14","revision":1e400}`,
			[]string{"revision: must be a whole number"}},
		{"objects, arrays and list entries",
			`{` + baseIncident + `,"occurred_at":"2025-03-14","location":"RRK","safety_challenges":["1",2,null,{}],` +
				`"agents":{"medications":[{"name":"x"},"aspirin"],"blood_products":{"brand":1,"factors":[3]}},"patients":{}}`,
			[]string{
				"patients: must be an array",
				"agents.medications[1]: must be an object",
				"agents.blood_products.brand: must be a string",
				"agents.blood_products.factors[0]: must be a string",
				"safety_challenges[1]: must be a string",
				"safety_challenges[3]: must be a string",
				"location: must be an object",
				// null is not a type error: it decodes to an empty entry, which is refused.
				"safety_challenges[2]: must not be empty",
			}},
		{"keys matched as the decoder matches them", `{` + baseIncident + `,"occurred_at":"2025-03-14","Location":{"Organisation":5}}`,
			[]string{"location.organisation: must be a string"}},
		{"unknown keys ignored", `{` + baseIncident + `,"occurred_at":"2025-03-14","extra":{"a":1},"revision":"x"}`,
			[]string{"revision: must be a whole number"}},
		{"booleans", `{` + baseIncident + `,"occurred_at":"2025-03-14","occurred_estimated":"yes","governance":{"never_event":1}}`,
			[]string{"occurred_estimated: must be true or false", "governance.never_event: must be true or false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ps := ParseIncident([]byte(tt.body), ParseOptions{Now: goldenNow})
			if diff := cmp.Diff(tt.want, problemStrings(ps), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTypeProblemsNeverPanics feeds typeProblems documents that decode but fit no field.
func TestTypeProblemsNeverPanics(t *testing.T) {
	for _, s := range []string{`null`, `1`, `[]`, `"x"`, `{}`, `{"patients":[[[[[[1]]]]]]}`, `{"agents":{"blood_products":[]}}`,
		`{"patients":[null,{"age_years":-9223372036854775809}]}`, `{`} {
		typeProblems([]byte(s))
	}
}

// TestParseIncidentNHSNumber: a patient's NHS number is refused at ingest (400) unless it is
// ten ASCII digits with a valid Modulus 11 check digit, and the problem never quotes it. The
// ingest API asks for the number as the Personal Demographics Service writes it; the shapes
// the privacy guard finds in free text ("943 476 5919") are not accepted here.
func TestParseIncidentNHSNumber(t *testing.T) {
	const refused = "patients[0].nhs_number: must be 10 digits with a valid Modulus 11 check digit"
	for _, tt := range []struct {
		name, nhs string
		ok        bool
	}{
		{"valid", "9434765919", true},
		{"check digit 11 becomes 0", "0000000000", true},
		{"wrong check digit", "9434765918", false},
		{"check digit would be 10", "2563416850", false},
		{"nine digits", "943476591", false},
		{"eleven digits", "94347659190", false},
		{"spaces", "943 476 5919", false},
		{"hyphens", "943-476-5919", false},
		{"full-width digits", "９４３４７６５９１９", false},
		{"letter", "943476591A", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{` + baseIncident + `,"occurred_at":"2025-03-14","patients":[{"nhs_number":"` + tt.nhs + `"}]}`
			_, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
			var want []string
			if !tt.ok {
				want = []string{refused}
			}
			if diff := cmp.Diff(want, problemStrings(ps), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, p := range ps {
				if strings.Contains(p.String(), tt.nhs) {
					t.Errorf("problem %q quotes the number", p)
				}
			}
		})
	}
}

func TestParseDateOrTimeForms(t *testing.T) {
	for in, want := range map[string]string{
		"2025-03-14":                    "2025-03-14T00:00:00Z",
		"2025-03-14T09:30:00Z":          "2025-03-14T09:30:00Z",
		"2025-03-14t09:30:00z":          "2025-03-14T09:30:00Z", // RFC 3339 §5.6 allows lower case
		"2025-03-14T09:30:00.25+01:00":  "2025-03-14T08:30:00.25Z",
		"2025-03-14t09:30:00.123-05:00": "2025-03-14T14:30:00.123Z",
	} {
		got, err := ParseDateOrTime(in)
		if err != nil || got.UTC().Format(time.RFC3339Nano) != want {
			t.Errorf("ParseDateOrTime(%q) = %v, %v; want %s", in, got.UTC().Format(time.RFC3339Nano), err, want)
		}
	}
	for _, in := range []string{"2025-03-14 09:30:00Z", "2025-03-14T09:30", "14/03/2025", "2025-3-14", "2025-03-14X09:30:00Z"} {
		if _, err := ParseDateOrTime(in); err == nil {
			t.Errorf("ParseDateOrTime(%q): got no error", in)
		}
	}
}

// TestLowerCaseDateTimeIsSentUpperCase: the incident takes RFC 3339's lower-case form, but
// FHIR's dateTime does not, so the payload carries the upper-case one.
func TestLowerCaseDateTimeIsSentUpperCase(t *testing.T) {
	in, probs := ParseIncident([]byte(`{"source":"datix","local_id":"A1","event_type":"incident","occurred_at":"2025-03-14t09:30:00z","description":"x"}`), ParseOptions{Now: goldenNow})
	if len(probs) > 0 {
		t.Fatalf("got problems %v", probs)
	}
	p := (&Builder{Version: 5}).Prepare(in)
	if len(p.Problems) > 0 {
		t.Fatalf("got problems %v", p.Problems)
	}
	if !strings.Contains(string(p.Payload), `"date":"2025-03-14T09:30:00Z"`) {
		t.Errorf("payload date: want 2025-03-14T09:30:00Z in %s", p.Payload)
	}
}
