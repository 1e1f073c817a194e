package patients_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest/hl7mllp/mllptest"
	"github.com/psgw/psgw/test/jstest"
)

// mapped parses the raw incident as the mapper does (on every mapping and replay), enriches
// it from the store as of raw sequence seq, and maps it; it returns the first patient's
// AgeAtTimeOfIncidentDays (-1 when none is sent) and the warnings.
func (r *rig) mapped(b *fhir.Builder, raw string, seq uint64) (age int, warnings []string) {
	r.t.Helper()
	in, ps := fhir.ParseIncident([]byte(raw), fhir.ParseOptions{Now: t0.Add(30 * 24 * time.Hour)})
	if len(ps) > 0 {
		r.t.Fatal(ps)
	}
	r.enrich(in, seq)
	prep := b.Prepare(in)
	if len(prep.Problems) > 0 {
		r.t.Fatal(prep.Problems)
	}
	for _, w := range prep.Warnings {
		warnings = append(warnings, w.String())
	}
	var doc struct {
		Contained []struct {
			ResourceType string
			Extension    []struct {
				Extension []struct {
					URL          string `json:"url"`
					ValueInteger *int   `json:"valueInteger"`
				}
			}
		}
	}
	if err := json.Unmarshal(prep.Payload, &doc); err != nil {
		r.t.Fatal(err)
	}
	for _, c := range doc.Contained {
		if c.ResourceType != "Patient" {
			continue
		}
		for _, f := range c.Extension[0].Extension {
			if f.URL == "AgeAtTimeOfIncidentDays" {
				return *f.ValueInteger, warnings
			}
		}
	}
	return -1, warnings
}

// TestDateOfBirthCorrectionReachesThePayload is issue 14's "must show 2": the PAS registers
// a patient with a placeholder date of birth (A28, 1900-01-01), and corrects it two days
// later (A31, 1965-04-12). An incident dated between the two, mapped after the correction
// arrived, carries the corrected age, not 125 years; one mapped before the correction
// carries no age and a warning; and the replay of an incident older than both, after the
// correction, carries the corrected age too. The store is the real one, on an embedded
// JetStream.
func TestDateOfBirthCorrectionReachesThePayload(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	b := &fhir.Builder{Version: 5}
	raw := func(id, occurred string) string {
		return `{"source":"datix","local_id":"` + id + `","event_type":"incident","occurred_at":"` + occurred +
			`","description":"Fall","patients":[{"nhs_number":"` + jane.NHS + `"}]}`
	}
	older := raw("OLD", "2025-02-20T10:00:00Z") // before the A28: the store did not know her yet
	between := raw("MID", "2025-03-02T10:00:00Z")

	placeholder := jane
	placeholder.DOB = "19000101"
	r.adt(mllptest.ADT("A28", "P1", t0, placeholder)) // t0 is 2025-03-01 08:00 UTC
	olderSeq := r.incidentSeq()
	age, warnings := r.mapped(b, older, olderSeq)
	if age != -1 || len(warnings) != 1 || !strings.Contains(warnings[0], "date_of_birth: no age sent: it is a placeholder date") {
		t.Fatalf("before the correction: age %d, warnings %q; want no age and the placeholder warning", age, warnings)
	}

	r.adt(mllptest.ADT("A31", "P2", t0.Add(48*time.Hour), jane)) // the real date of birth
	// 1965-04-12 to 2025-03-02 is 59 years 10 months 18 days.
	if age, warnings := r.mapped(b, between, r.incidentSeq()); age != 59*372+10*31+18 || len(warnings) > 0 {
		t.Errorf("incident between the A28 and the A31, mapped after the A31: age %d, warnings %q; want %d", age, warnings, 59*372+10*31+18)
	}
	// The replay maps the older incident's raw record again, under its own (older) sequence.
	if age, warnings := r.mapped(b, older, olderSeq); age != 59*372+10*31+8 || len(warnings) > 0 {
		t.Errorf("replay of the older incident after the A31: age %d, warnings %q; want %d", age, warnings, 59*372+10*31+8)
	}
}

// TestMergedNHSNumberGetsTheSurvivorsCorrections: after an A40 merges a duplicate
// registration into the surviving record, an incident that names the merged-away NHS
// number gets the surviving patient's facts, as last corrected, whatever its date.
func TestMergedNHSNumberGetsTheSurvivorsCorrections(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	r.adt(mllptest.ADT("A28", "M1", t0, bob))
	r.adt(mllptest.ADT("A28", "M2", t0, jane))
	survivor := mllptest.Patient{NHS: jane.NHS, Local: jane.Local}
	r.adt(mllptest.ADTMerge("A40", "M3", t0.Add(time.Hour), survivor, &bob))
	corrected := jane
	corrected.DOB = "19650421"
	r.adt(mllptest.ADT("A31", "M4", t0.Add(2*time.Hour), corrected))
	in := incident("2025-02-01", fhir.Patient{NHSNumber: bob.NHS}) // before every message
	r.enrich(in, r.incidentSeq())
	if got := in.Patients[0]; got.DateOfBirth != "1965-04-21" || got.Sex != "female" {
		t.Errorf("by the merged-away NHS number: got %+v, want the survivor's corrected date of birth and sex", got)
	}
}

// TestBirthAfterADateOnlyIncidentInSummer: a date-only incident means the whole UK day. A
// stored date of birth of the next day is not filled in, even though the end of the UK day
// and the end of the UTC day differ by an hour in summer.
func TestBirthAfterADateOnlyIncidentInSummer(t *testing.T) {
	r := newRig(t, jstest.Open(t, t.TempDir()), 10*time.Second)
	r.start()
	baby := mllptest.Patient{NHS: jane.NHS, DOB: "20250615", Sex: "F"}
	r.adt(mllptest.ADT("A28", "B1", time.Date(2025, 6, 14, 23, 30, 0, 0, time.UTC), baby))
	seq := r.incidentSeq()
	for occurred, want := range map[string]string{"2025-06-14": "", "2025-06-15": "2025-06-15"} {
		in := incident(occurred, fhir.Patient{NHSNumber: jane.NHS})
		r.enrich(in, seq)
		if got := in.Patients[0].DateOfBirth; got != want {
			t.Errorf("incident on %s: date of birth %q, want %q", occurred, got, want)
		}
	}
}
