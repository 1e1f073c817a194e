package fhir

import (
	"strconv"
	"strings"
	"testing"

	"github.com/psgw/psgw/fhir/privacy"
)

// janeDoe is an incident whose free text names its patient in every way issue 15 found
// leaving verbatim: name, date of birth, MRN and NHS number.
const janeDoe = `{"source":"datix","local_id":"A1","event_type":"incident","occurred_at":"2025-03-14T09:30:00Z",` +
	`"description":"Patient Jane Doe (DOB 01/03/1975, MRN RRK1023456, NHS 943\u00ad476\u00ad5919) fell; Jane was seen.",` +
	`"immediate_actions":"Doe family told 1st March 1975 is on file",` +
	`"patients":[{"nhs_number":"9434765919","local_patient_id":"RRK1023456","date_of_birth":"1975-03-01","sex":"female",` +
	`"physical_harm":"low","clinical_outcome":"JANE recovered"}],"location":{"organisation":"RRK"}}`

func TestPrepareWithRemovesKnownIdentifiers(t *testing.T) {
	in, ps := ParseIncident([]byte(janeDoe), ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, v := range []int{5, 6} {
		b := &Builder{Version: v}
		prep := b.PrepareWith(in, PrepareOptions{Known: privacy.Known{Names: []string{"Jane", "Doe"}}})
		if prep.Payload == nil {
			t.Fatalf("v%d: %v", v, prep.Problems)
		}
		for _, leak := range []string{"Jane", "JANE", "Doe", "01/03/1975", "1st March 1975", "RRK1023456", "943\u00ad476", "9434765919"} {
			if strings.Contains(string(prep.Payload), leak) {
				t.Errorf("v%d: payload holds %q", v, leak)
			}
		}
		want := privacy.Counts{privacy.KindNHSNumber: 1, privacy.KindLocalID: 1, privacy.KindDateOfBirth: 2, privacy.KindName: 5}
		if v == 6 {
			// v6 sends the description twice (description and the core extension's Description).
			// The builder redacts the NHS number once, before the copy.
			want = privacy.Counts{privacy.KindNHSNumber: 1, privacy.KindLocalID: 2, privacy.KindDateOfBirth: 3, privacy.KindName: 8}
		}
		if prep.Redacted != want || prep.Redactions != want.Total() {
			t.Errorf("v%d: got counts %v (%d), want %v", v, prep.Redacted, prep.Redactions, want)
		}
		// Without the names, the incident's own identifiers still go.
		prep = b.Prepare(in)
		if !strings.Contains(string(prep.Payload), "Jane") || strings.Contains(string(prep.Payload), "01/03/1975") {
			t.Errorf("v%d: Prepare: want the DOB redacted and the (unknown) name kept", v)
		}
	}
}

// TestPrepareProblemsQuoteNoIdentifier: a coded field holding a name and a date of birth is
// quarantined; the reason names the field and rule, and holds neither (issue 15, item 3).
func TestPrepareProblemsQuoteNoIdentifier(t *testing.T) {
	body := strings.Replace(janeDoe, `"location":{"organisation":"RRK"}`,
		`"location":{"organisation":"RRK"},"time_of_day":"Jane Doelittle DOB 01/03/1975 9434765919"`, 1)
	in, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, v := range []int{5, 6} {
		prep := (&Builder{Version: v}).PrepareWith(in, PrepareOptions{Known: privacy.Known{Names: []string{"Jane Doelittle"}}})
		if prep.Payload != nil || len(prep.Problems) == 0 {
			t.Fatalf("v%d: got no problems, want the unmapped value refused", v)
		}
		for _, p := range prep.Problems {
			for _, leak := range []string{"Jane", "Doelittle", "01/03/1975", "9434765919"} {
				if strings.Contains(p.String(), leak) {
					t.Errorf("v%d: problem %q quotes %q", v, p, leak)
				}
			}
		}
	}
}

func TestKnownIdentifiers(t *testing.T) {
	in := &Incident{Patients: []Patient{{NHSNumber: "9434765919", DateOfBirth: "1975-03-01"}, {LocalPatientID: "RRK1"}, {}}}
	k := KnownIdentifiers(in)
	if len(k.NHSNumbers) != 1 || len(k.BirthDates) != 1 || len(k.LocalIDs) != 1 || len(k.Names) != 0 {
		t.Errorf("got %+v", k)
	}
}

// BenchmarkPrepareHostile maps the costliest incident the ingest rules let through for the
// redaction: 100 patients whose local ids share 62 of their 64 characters, and every
// free-text field at its 32,000-character limit, written to match those ids' prefix
// everywhere. It reports the time per incident.
func BenchmarkPrepareHostile(b *testing.B) {
	text := strings.Repeat("a ", MaxFreeText/2)
	in := &Incident{Source: "datix", LocalID: "H1", EventType: EventIncident, OccurredAt: "2025-03-14",
		Description: text, ImmediateActions: text, OccurredApproximately: text,
		Risk:     &Risk{Description: text, Population: text, Imminent: "yes"},
		GoodCare: &GoodCare{Strengths: text, HowFutureOccurrence: text, WentWell: text},
		Agents: &Agents{MedicationProblem: &MedicationProblem{Description: text}, DeviceProblem: &DeviceProblem{Description: text},
			ITSystems: &ITSystems{Description: text}, Blood: &Blood{Description: text}, Tissues: &Tissues{Description: text},
			People: &People{InvolvementDescription: text, ActionsDescription: text}}}
	var names []string
	for i := range MaxPatients {
		in.Patients = append(in.Patients, Patient{LocalPatientID: strings.Repeat("a", 62) + strconv.Itoa(10+i%90),
			DateOfBirth: strconv.Itoa(1900+i) + "-01-01", ClinicalOutcome: text})
		names = append(names, "Patient"+strconv.Itoa(i))
	}
	bl := &Builder{Version: 5}
	b.ReportAllocs()
	for b.Loop() {
		if prep := bl.PrepareWith(in, PrepareOptions{Known: privacy.Known{Names: names}}); prep.Payload == nil {
			b.Fatal(prep.Problems)
		}
	}
}
