package fhir

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The tests in this file reproduce the defects of issue 14 (docs/mapping.md): payloads that
// were valid and clinically wrong, or silently incomplete.

// mapJSON parses and prepares one incident and returns the decoded payload, the problems and
// the warnings as "field: message" lines.
func mapJSON(t *testing.T, b *Builder, body string) (doc map[string]any, problems, warnings []string) {
	t.Helper()
	in, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatalf("ParseIncident: %v", ps)
	}
	prep := b.Prepare(in)
	for _, w := range prep.Warnings {
		warnings = append(warnings, w.String())
	}
	if len(prep.Problems) > 0 {
		return nil, problemStrings(prep.Problems), warnings
	}
	if err := json.Unmarshal(prep.Payload, &doc); err != nil {
		t.Fatal(err)
	}
	return doc, nil, warnings
}

// patientAnswers returns the answers of the n-th patient-information extension (from 0), by
// inner name; a repeated name keeps its last value.
func patientAnswers(t *testing.T, doc map[string]any, n int) map[string]any {
	t.Helper()
	for _, c := range asList(doc["contained"]) {
		m := c.(map[string]any)
		if m["resourceType"] != "Patient" {
			continue
		}
		exts := asList(m["extension"])
		if n >= len(exts) {
			t.Fatalf("no patient %d in %v", n, m)
		}
		return innerAnswers(exts[n].(map[string]any))
	}
	t.Fatalf("no contained Patient")
	return nil
}

func innerAnswers(ext map[string]any) map[string]any {
	out := map[string]any{}
	for _, ie := range asList(ext["extension"]) {
		im := ie.(map[string]any)
		for k, v := range im {
			if strings.HasPrefix(k, "value") {
				out[im["url"].(string)] = v
			}
		}
	}
	return out
}

// answersOf returns the answers of the AdverseEvent's extension whose url ends in id-<v>.
func answersOf(doc map[string]any, id string) map[string]any {
	for _, e := range asList(doc["extension"]) {
		m := e.(map[string]any)
		if u, _ := m["url"].(string); strings.HasSuffix(u, "/"+id+"-5") || strings.HasSuffix(u, "/"+id+"-6") {
			return innerAnswers(m)
		}
	}
	return nil
}

const fidelityBase = `"source":"datix","local_id":"F1","description":"Fall on the ward"`

// TestV6AlwaysHasSubject: R4 AdverseEvent.subject is 1..1, so a v6 risk, good care or
// incident with no patient was refused nationally while psgw map called it valid.
func TestV6AlwaysHasSubject(t *testing.T) {
	for _, body := range []string{
		`{` + fidelityBase + `,"event_type":"incident","occurred_at":"2025-03-14"}`,
		`{` + fidelityBase + `,"event_type":"risk","risk":{"imminent":"no"}}`,
		`{` + fidelityBase + `,"event_type":"good_care","good_care":{"how_future_occurrence":"Share it"}}`,
	} {
		doc, ps, _ := mapJSON(t, &Builder{Version: 6}, body)
		if len(ps) > 0 {
			t.Fatalf("problems: %v", ps)
		}
		subject, _ := doc["subject"].(map[string]any)
		if subject["reference"] != "#patient1" {
			t.Errorf("%s: subject %v, want #patient1", body, doc["subject"])
		}
		var patient map[string]any
		for _, c := range asList(doc["contained"]) {
			if m := c.(map[string]any); m["id"] == "patient1" {
				patient = m
			}
		}
		if want := map[string]any{"resourceType": "Patient", "id": "patient1"}; !cmp.Equal(patient, want) {
			t.Errorf("contained patient %v, want the empty %v", patient, want)
		}
		// v5 (STU3, subject 0..1) still leaves it out.
		doc5, _, _ := mapJSON(t, &Builder{Version: 5}, body)
		if _, ok := doc5["subject"]; ok {
			t.Errorf("v5 payload has a subject with no patient")
		}
	}
	// And the check refuses a v6 payload without one, so psgw map cannot call it valid.
	doc, _, _ := mapJSON(t, &Builder{Version: 6}, `{`+fidelityBase+`,"event_type":"incident","occurred_at":"2025-03-14"}`)
	delete(doc, "subject")
	var found bool
	for _, p := range CheckPayload(6, doc) {
		found = found || p.Path == "subject"
	}
	if !found {
		t.Errorf("CheckPayload(6) accepts a payload without subject: %v", CheckPayload(6, doc))
	}
}

// TestV6Sex: v6 dropped every patient's sex unless a v6 code map existed, and said nothing.
func TestV6Sex(t *testing.T) {
	body := `{` + fidelityBase + `,"event_type":"incident","occurred_at":"2025-03-14","patients":[{"sex":"female"},{"sex":"male"},{"sex":"other"},{"sex":"unknown"}]}`
	doc, ps, ws := mapJSON(t, &Builder{Version: 6}, body)
	if len(ps)+len(ws) > 0 {
		t.Fatalf("problems %v, warnings %v", ps, ws)
	}
	for i, want := range []string{"1", "2", "4", "3"} {
		if got := patientAnswers(t, doc, i)["GenderIdentity"]; got != want {
			t.Errorf("patient %d: GenderIdentity %v, want %s", i, got, want)
		}
	}
	// A source's v6 map wins over the default.
	b := &Builder{Version: 6, Codes: NewCodeMaps(6, SourceCodeMaps{"datix": {"patients.sex": {"6": {"other": "9"}}}})}
	doc, _, _ = mapJSON(t, b, body)
	if got := patientAnswers(t, doc, 2)["GenderIdentity"]; got != "9" {
		t.Errorf("mapped other: GenderIdentity %v, want 9", got)
	}
	// A value nothing maps (only the enricher can produce one) is not sent, with a warning.
	in := &Incident{Source: "datix", LocalID: "F1", EventType: EventIncident, OccurredAt: "2025-03-14", Description: "x",
		Patients: []Patient{{Sex: "X"}}}
	res := (&Builder{Version: 6}).Build(in)
	if len(res.Warnings) != 1 || res.Warnings[0].Field != "patients[0].sex" || res.Warnings[0].Kind != WarnSex {
		t.Errorf("unmappable sex: got warnings %v, want one on patients[0].sex", res.Warnings)
	}
}

// TestAdministeredIsNotMedicationAdministration: "did the medicine reach the patient" was sent
// as MedicationAdministration, which asks whether a device gave it.
func TestAdministeredIsNotMedicationAdministration(t *testing.T) {
	for _, v := range []int{5, 6} {
		doc, _, ws := mapJSON(t, &Builder{Version: v}, `{`+fidelityBase+`,"event_type":"incident","occurred_at":"2025-03-14",
			"agents":{"medications":[{"name":"Insulin","administered":"yes"},{"name":"Heparin","administered_by_device":"yes"}]}}`)
		var meds []map[string]any
		for _, c := range asList(doc["contained"]) {
			if m := c.(map[string]any); m["resourceType"] == "Medication" {
				meds = append(meds, m)
			}
		}
		if len(meds) != 1 || meds[0]["id"] != "medication2" {
			t.Fatalf("v%d: contained medications %v, want only medication2 (the one given by a device)", v, meds)
		}
		if got := innerAnswers(asList(meds[0]["extension"])[0].(map[string]any))["MedicationAdministration"]; got != "y" {
			t.Errorf("v%d: MedicationAdministration %v, want y", v, got)
		}
		if len(ws) != 1 || !strings.HasPrefix(ws[0], "agents.medications[0].administered: not sent:") {
			t.Errorf("v%d: warnings %q, want one saying administered is not sent", v, ws)
		}
	}
}

// TestUnknownFieldsAreWarned: misspelt and unknown fields vanished with 202 and exit 0.
func TestUnknownFieldsAreWarned(t *testing.T) {
	body := `{` + fidelityBase + `,"event_type":"incident","occurred_at":"2025-03-14",
		"patients":[{"sex":"male"},{"physicalHarm":"severe","Sex":"female","dob":"1950-01-01"}],
		"agents":{"medication":[{"name":"Amoxicillin"}],"medications":[{"name":"x","dose":"5mg"}]},
		"location":{"organisation":"RRK","ward":"Ward 7"},
		"severity":{"nested":[1,{"deep":true}]},"extra_\u00e9":null}`
	in, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	var got []string
	for _, w := range in.Warnings {
		got = append(got, string(w.Kind)+" "+w.String())
	}
	want := []string{
		"unknown_field patients[1].physicalHarm: unknown field, ignored; did you mean physical_harm?",
		"field_case patients[1].Sex: read as sex; write field names exactly as documented (docs/incident.schema.json)",
		"unknown_field patients[1].dob: unknown field, ignored; did you mean date_of_birth?",
		"unknown_field agents.medication: unknown field, ignored; did you mean medications?",
		"unknown_field agents.medications[0].dose: unknown field, ignored",
		"unknown_field location.ward: unknown field, ignored",
		"unknown_field severity: unknown field, ignored",
		"unknown_field extra_é: unknown field, ignored",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	// They travel with the incident into the mapping result, first.
	prep := (&Builder{Version: 5}).Prepare(in)
	if len(prep.Warnings) < len(want) || prep.Warnings[0].Field != "patients[1].physicalHarm" {
		t.Errorf("Prepare warnings %v do not start with the parse warnings", prep.Warnings)
	}
	// A key shaped like an NHS number is not repeated in a warning.
	in, _ = ParseIncident([]byte(`{`+fidelityBase+`,"event_type":"risk","9434765919":1}`), ParseOptions{Now: goldenNow})
	if len(in.Warnings) != 1 || strings.Contains(in.Warnings[0].Field, "9434765919") {
		t.Errorf("got warnings %v, want one with the number redacted", in.Warnings)
	}
}

func TestSuggestField(t *testing.T) {
	patient := jsonFieldsOf(reflect.TypeFor[Patient]())
	for key, want := range map[string]string{
		"physicalHarm": "physical_harm", "Physical-Harm": "physical_harm", "physical_harms": "physical_harm",
		"psycological_harm": "psychological_harm", "DOB": "date_of_birth", "gender": "sex", "nhsnumber": "nhs_number",
		"ethnicty": "ethnicity", "ward": "", "x": "", "harm": "", "": "",
	} {
		if got := suggestField(key, patient); got != want {
			t.Errorf("suggestField(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestUKWallClock: PreciseTime and the incident's date were taken in the sender's offset, so
// a source sending UTC was an hour out all summer and events after midnight BST fell on the
// day before. The cases straddle both clock changes of 2025 (30 March, 26 October, 01:00 UTC).
func TestUKWallClock(t *testing.T) {
	for _, tt := range []struct {
		occurred, reported   string
		date, precise, today string
		dob                  string
		age                  float64
	}{
		{"2025-03-30T00:59:59Z", "2025-03-30", "2025-03-30T00:59:59Z", "00:59:59", "y", "2025-03-30", 0},
		{"2025-03-30T01:00:00Z", "2025-03-30", "2025-03-30T02:00:00+01:00", "02:00:00", "y", "2025-03-30", 0},
		{"2025-03-29T23:30:00Z", "2025-03-30", "2025-03-29T23:30:00Z", "23:30:00", "n", "2025-03-29", 0},
		{"2025-06-30T23:30:00Z", "2025-07-01", "2025-07-01T00:30:00+01:00", "00:30:00", "y", "2025-07-01", 0},
		{"2025-07-01T00:30:00+01:00", "2025-07-01", "2025-07-01T00:30:00+01:00", "00:30:00", "y", "2025-06-30", 1},
		{"2025-10-25T23:30:00Z", "2025-10-26", "2025-10-26T00:30:00+01:00", "00:30:00", "y", "2025-10-26", 0},
		{"2025-10-26T00:59:59Z", "2025-10-26", "2025-10-26T01:59:59+01:00", "01:59:59", "y", "2025-10-26", 0},
		{"2025-10-26T01:00:00Z", "2025-10-26", "2025-10-26T01:00:00Z", "01:00:00", "y", "2025-10-26", 0},
		{"2025-10-26T23:30:00Z", "2025-10-27", "2025-10-26T23:30:00Z", "23:30:00", "n", "2025-10-26", 0},
		{"2025-01-01T23:30:00-05:00", "2025-01-02", "2025-01-02T04:30:00Z", "04:30:00", "y", "2025-01-02", 0},
		{"2025-03-14", "2025-03-14", "2025-03-14", "", "y", "2025-03-13", 1},
	} {
		body := `{` + fidelityBase + `,"event_type":"incident","occurred_at":"` + tt.occurred + `","reported_at":"` + tt.reported +
			`","patients":[{"date_of_birth":"` + tt.dob + `"}]}`
		for _, v := range []int{5, 6} {
			in, ps := ParseIncident([]byte(body), ParseOptions{Now: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)})
			if len(ps) > 0 {
				t.Fatalf("%s: %v", tt.occurred, ps)
			}
			prep := (&Builder{Version: v}).Prepare(in)
			if len(prep.Problems) > 0 {
				t.Fatalf("%s: %v", tt.occurred, prep.Problems)
			}
			var doc map[string]any
			_ = json.Unmarshal(prep.Payload, &doc)
			dates := answersOf(doc, "adverse-event-estimated-date")
			precise, _ := dates["PreciseTime"].(string)
			if doc["date"] != tt.date || precise != tt.precise || dates["IncidentOccurredToday"] != tt.today {
				t.Errorf("v%d %s: date %v PreciseTime %q today %v, want %s %q %s", v, tt.occurred,
					doc["date"], precise, dates["IncidentOccurredToday"], tt.date, tt.precise, tt.today)
			}
			if got := patientAnswers(t, doc, 0)["AgeAtTimeOfIncidentDays"]; got != tt.age {
				t.Errorf("v%d %s born %s: age %v, want %v", v, tt.occurred, tt.dob, got, tt.age)
			}
		}
	}
}

// TestNeonateBornAfterMidnightBST: a baby born at 00:30 BST whose incident was sent in UTC
// (23:45 the evening before by the UTC date) was refused with "date_of_birth must not be
// after occurred_at".
func TestNeonateBornAfterMidnightBST(t *testing.T) {
	body := `{` + fidelityBase + `,"event_type":"incident","occurred_at":"2025-05-19T23:45:00Z","patients":[{"date_of_birth":"2025-05-20"}]}`
	doc, ps, ws := mapJSON(t, &Builder{Version: 5}, body)
	if len(ps)+len(ws) > 0 {
		t.Fatalf("problems %v warnings %v", ps, ws)
	}
	if got := patientAnswers(t, doc, 0)["AgeAtTimeOfIncidentDays"]; got != 0.0 {
		t.Errorf("age %v, want 0", got)
	}
}

// TestZoneWithoutSystemData runs the UK clock test in a child process whose ZONEINFO points
// nowhere and whose TZ is unusable: the zone is compiled in, so nothing changes. (The image
// is distroless and has no /usr/share/zoneinfo.)
func TestZoneWithoutSystemData(t *testing.T) {
	if os.Getenv("PSGW_TEST_NO_ZONEINFO") == "1" {
		if _, err := time.LoadLocation("Europe/Paris"); err == nil && os.Getenv("ZONEINFO") == "" {
			t.Fatal("ZONEINFO is not set in the child")
		}
		if got := UKTime(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)).Format("15:04 MST"); got != "13:00 BST" {
			t.Fatalf("UK time of 12:00 UTC on 1 July: got %s, want 13:00 BST", got)
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^(TestZoneWithoutSystemData|TestUKWallClock|TestNeonateBornAfterMidnightBST)$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PSGW_TEST_NO_ZONEINFO=1", "ZONEINFO=/nonexistent/zoneinfo.zip", "TZ=Nowhere/Nothing")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with ZONEINFO pointing nowhere failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("child ran no test:\n%s", out)
	}
}

// TestAges covers items 8 and 9 of issue 14: implausible ages were sent as fact, a known
// age_years went out only as a bracket, age_years 0 gave nothing, and a risk with a date of
// birth but no occurred_at gave no age.
func TestAges(t *testing.T) {
	tests := []struct {
		name     string
		b        Builder
		body     string // members after fidelityBase
		answers  map[string]any
		warnings []string
	}{
		{"placeholder 1900-01-01", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1900-01-01"}]`,
			map[string]any{}, []string{"patients[0].date_of_birth: no age sent: it is a placeholder date that source systems record for an unknown date of birth (mapping placeholder list)"}},
		{"placeholder 1800-01-01", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1800-01-01","age_years":77}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 77.0 * 372}, []string{"patients[0].date_of_birth: no age sent: it is a placeholder date that source systems record for an unknown date of birth (mapping placeholder list)"}},
		{"configured placeholder", Builder{PlaceholderBirthDates: []string{"1901-01-01"}}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1901-01-01"},{"date_of_birth":"1900-01-01"}]`,
			map[string]any{}, []string{"patients[0].date_of_birth: no age sent: it is a placeholder date that source systems record for an unknown date of birth (mapping placeholder list)",
				"patients[1].date_of_birth: no age sent: it gives more than 120 years, so it is a placeholder or a typing error"}},
		{"1880 gives 145 years", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1880-03-01"}]`,
			map[string]any{}, []string{"patients[0].date_of_birth: no age sent: it gives more than 120 years, so it is a placeholder or a typing error"}},
		{"120 years is believed", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1904-06-01"}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 120.0*372 + 9*31 + 13}, nil},
		{"age_years exact under the 372 rule, no bracket", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"age_years":77}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 77.0 * 372}, nil},
		{"age_years 0 is an age", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"age_years":0}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 0.0}, []string{"patients[0].age_years: sent as AgeAtTimeOfIncidentDays 0 (0 whole years): months and days under one year are not known; give date_of_birth for an exact age"}},
		{"age_years under the days encoding gives the bracket", Builder{AgeEncoding: AgeDays}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"age_years":77}]`,
			map[string]any{"AgeBracket": "11"}, []string{"patients[0].age_years: sent as AgeBracket only: the days encoding (mapping.age_encoding) cannot carry whole years exactly; give date_of_birth for an exact age"}},
		{"age_years that agrees with the date of birth", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1975-03-14","age_years":50}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 18600.0}, nil},
		{"age_years that disagrees", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1975-03-14","age_years":51}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 18600.0}, []string{"patients[0].age_years: not sent: the age from date_of_birth is sent, and differs from it"}},
		{"bracket only when the exact age is unknown", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"age_bracket":"9"},{"date_of_birth":"1975-03-14","age_bracket":"10"}]`,
			map[string]any{"AgeBracket": "9"}, []string{"patients[1].age_bracket: not sent: the age from date_of_birth or age_years is sent, and LFPSE takes AgeBracket only when the age is unknown"}},
		{"bracket only (mapping.age_precision: bracket), from the date of birth", Builder{AgeBracketOnly: true}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"date_of_birth":"1975-03-14"}]`,
			map[string]any{"AgeBracket": "10"}, nil},
		{"bracket only, from age_years", Builder{AgeBracketOnly: true}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"age_years":77},{"age_years":0}]`,
			map[string]any{"AgeBracket": "11"}, []string{"patients[1].age_years: not sent: under one year the age bracket depends on months psgw does not know; give date_of_birth"}},
		{"bracket only, a neonate", Builder{AgeBracketOnly: true}, `"event_type":"incident","occurred_at":"2025-05-19T23:45:00Z","patients":[{"date_of_birth":"2025-05-20"}]`,
			map[string]any{"AgeBracket": "1"}, nil},
		{"risk with a date of birth and reported_at only", Builder{}, `"event_type":"risk","reported_at":"2025-03-14T10:00:00Z","patients":[{"date_of_birth":"1975-03-14"}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 18600.0}, nil},
		{"good care with a date of birth and no date: as at receipt", Builder{}, `"event_type":"good_care","patients":[{"date_of_birth":"1975-06-01"}]`,
			map[string]any{"AgeAtTimeOfIncidentDays": 18600.0}, nil},
		{"no psychological harm beside a death", Builder{}, `"event_type":"incident","occurred_at":"2025-03-14","patients":[{"physical_harm":"fatal","psychological_harm":"severe"}]`,
			map[string]any{"PhysicalHarm": "1"}, []string{"patients[0].psychological_harm: not sent: LFPSE does not ask the psychological harm of a patient whose physical harm was fatal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []int{5, 6} {
				b := tt.b
				b.Version = v
				doc, ps, ws := mapJSON(t, &b, `{`+fidelityBase+`,`+tt.body+`}`)
				if len(ps) > 0 {
					t.Fatalf("v%d: problems %v", v, ps)
				}
				got := patientAnswers(t, doc, 0)
				delete(got, "PatientSequence")
				if diff := cmp.Diff(tt.answers, got); diff != "" {
					t.Errorf("v%d: first patient's answers (-want +got):\n%s", v, diff)
				}
				if diff := cmp.Diff(tt.warnings, ws, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("v%d: warnings (-want +got):\n%s", v, diff)
				}
			}
		})
	}
}

// TestBuilderDateOfBirthAfterEvent: the enricher fills dates of birth in after ParseIncident;
// one after the event gives no age and a warning, not a quarantine.
func TestBuilderDateOfBirthAfterEvent(t *testing.T) {
	in := &Incident{Source: "datix", LocalID: "F1", EventType: EventIncident, OccurredAt: "2025-03-14", Description: "x",
		Patients: []Patient{{DateOfBirth: "2025-03-15"}}}
	prep := (&Builder{Version: 5}).Prepare(in)
	if prep.Payload == nil || len(prep.Warnings) != 1 || prep.Warnings[0].Kind != WarnAge {
		t.Errorf("got problems %v warnings %v, want a payload and one age warning", prep.Problems, prep.Warnings)
	}
}

// TestFreeTextIsCleaned: FHIR strings may not hold C0 controls other than tab, CR and LF,
// and bidirectional overrides can make a report read differently from what it holds.
func TestFreeTextIsCleaned(t *testing.T) {
	body := `{` + strings.Replace(fidelityBase, `"Fall on the ward"`, `"Fall\u0000 on the\u0007 ward\r\n\tnext line \u202Eevil\u202C \u2066x\u2069"`, 1) +
		`,"event_type":"incident","occurred_at":"2025-03-14","immediate_actions":"ok\u001b[31m"}`
	for _, v := range []int{5, 6} {
		doc, ps, ws := mapJSON(t, &Builder{Version: v}, body)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		if got, want := doc["description"], "Fall on the ward\r\n\tnext line evil x"; got != want {
			t.Errorf("v%d: description %q, want %q", v, got, want)
		}
		if got := answersOf(doc, "adverse-event-outcome")["ImmediateActions"]; got != "ok[31m" {
			t.Errorf("v%d: ImmediateActions %q", v, got)
		}
		want := []string{
			"description: 6 control or bidirectional-override characters removed: FHIR text may not hold them",
			"immediate_actions: 1 control or bidirectional-override character removed: FHIR text may not hold them",
		}
		if diff := cmp.Diff(want, ws); diff != "" {
			t.Errorf("v%d: warnings (-want +got):\n%s", v, diff)
		}
	}
	if s, n := CleanText("plain café\t"); s != "plain café\t" || n != 0 {
		t.Errorf("CleanText changed clean text: %q %d", s, n)
	}
}

// TestFallbacksAreWarned: an ODS code missing from the list, an unknown specialty and the
// like became free text in an "Other" field with no warning, and a local value equal to an
// LFPSE code (local role 1 = doctor) was taken as that code when the map missed it.
func TestFallbacksAreWarned(t *testing.T) {
	body := `{` + fidelityBase + `,"event_type":"incident","occurred_at":"2025-03-14",
		"location":{"organisation":"X26","specialty":"Tropical podiatry"},"reporter":{"role":"1"},
		"agents":{"devices":[{"type":"Gizmo"}]}}`
	codes := NewCodeMaps(5, SourceCodeMaps{"datix": {"reporter.role": {"*": {"RN": "5"}}}})
	_, ps, ws := mapJSON(t, &Builder{Version: 5, Codes: codes}, body)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	kinds := map[string]WarningKind{}
	in, _ := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
	for _, w := range (&Builder{Version: 5, Codes: codes}).Prepare(in).Warnings {
		kinds[w.Field] = w.Kind
	}
	want := map[string]WarningKind{
		"location.organisation": WarnUnknownODS, "location.specialty": WarnOther,
		"reporter.role": WarnCodeAsIs, "agents.devices[0].type": WarnOther,
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("warning kinds (-want +got):\n%s\n%s", diff, strings.Join(ws, "\n"))
	}
	// Without a map for the field, an LFPSE code is what the source means: no warning.
	_, _, ws = mapJSON(t, &Builder{Version: 5}, `{`+fidelityBase+`,"event_type":"incident","occurred_at":"2025-03-14","reporter":{"role":"1"}}`)
	if len(ws) > 0 {
		t.Errorf("role 1 without a code map: warnings %v", ws)
	}
	// A source that quarantines fallbacks gets problems instead, and no payload.
	b := &Builder{Version: 5, Codes: codes, QuarantineFallbacks: func(s string) bool { return s == "datix" }}
	prep := b.Prepare(in)
	if prep.Payload != nil || len(prep.Problems) != 4 {
		t.Errorf("quarantined fallbacks: got %d problems %v, want 4 and no payload", len(prep.Problems), prep.Problems)
	}
	for _, p := range prep.Problems {
		if !strings.HasSuffix(p.Message, "(this source's fallbacks are quarantined)") {
			t.Errorf("problem %q does not say why", p)
		}
	}
	if slices.ContainsFunc(prep.Warnings, func(w Warning) bool { return w.Kind.Fallback() }) {
		t.Errorf("fallbacks both warned and quarantined: %v", prep.Warnings)
	}
	// The ingest API's preview still names them, so that the sender hears at once.
	if n := len(b.Warnings(in)); n != 4 {
		t.Errorf("Builder.Warnings with quarantined fallbacks: got %d, want the 4 fallbacks", n)
	}
}
