package fhir

import (
	"strings"
	"testing"
	"time"
)

// TestLocalWordsForCoreFields: a source's code maps translate its own words for the event
// type, sex and harm (to the API's words or to LFPSE codes), in ParseIncident and in
// DecodeAccepted alike; a word the map lacks is refused naming the map to add it to; without
// code maps nothing is translated.
func TestLocalWordsForCoreFields(t *testing.T) {
	codes := NewCodeMaps(5, SourceCodeMaps{"datix": {
		"event_type":                  {"*": {"Incident": "incident", "Near miss": "incident"}},
		"patients.physical_harm":      {"*": {"No harm": "none", "Low harm": "low", "Death": "1"}},
		"patients.psychological_harm": {"5": {"No harm": "4"}},
		"patients.sex":                {"*": {"Male": "male", "Female": "1", "Not known": "unknown"}},
	}})
	body := func(eventType, sex, harm, psych string) []byte {
		return []byte(`{"source":"datix","local_id":"W1","event_type":"` + eventType + `","occurred_at":"2025-03-14","description":"x",` +
			`"patients":[{"sex":"` + sex + `","physical_harm":"` + harm + `","psychological_harm":"` + psych + `"}]}`)
	}
	opt := ParseOptions{Now: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), Codes: codes}
	for name, decode := range map[string]func([]byte, ParseOptions) (*Incident, []Problem){"ParseIncident": ParseIncident, "DecodeAccepted": DecodeAccepted} {
		in, ps := decode(body("Near miss", "Female", "Death", "no harm"), opt)
		if len(ps) > 0 {
			t.Fatalf("%s: %v", name, ps)
		}
		p := in.Patients[0]
		if in.EventType != "incident" || p.Sex != "female" || p.PhysicalHarm != "fatal" || p.PsychologicalHarm != "none" {
			t.Errorf("%s: got %q %q %q %q, want incident female fatal none", name, in.EventType, p.Sex, p.PhysicalHarm, p.PsychologicalHarm)
		}
		_, ps = decode(body("Complaint", "Male", "Catastrophic", "none"), opt)
		got := problemsText(ps)
		for _, want := range []string{
			`event_type: must be incident, risk, outcome or good_care, or a word of the source's that sources.datix.code_maps["event_type"] maps to one`,
			`patients[0].physical_harm: must be one of none, low, moderate, severe, fatal, or a word of the source's that sources.datix.code_maps["patients.physical_harm"] maps to one`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: problems %q lack %q", name, got, want)
			}
		}
		if strings.Contains(got, "Catastrophic") || strings.Contains(got, "Complaint") {
			t.Errorf("%s: a problem quotes the value: %q", name, got)
		}
		opt := opt
		opt.Codes = nil
		if _, ps := decode(body("Near miss", "male", "none", "none"), opt); len(ps) != 1 || ps[0].Field != "event_type" {
			t.Errorf("%s without code maps: got %v, want event_type refused", name, ps)
		}
	}
}

func problemsText(ps []Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, "\n")
}

// TestCheckCodeMapsCoreFields: a map of a core field must name one of its words or LFPSE
// codes.
func TestCheckCodeMapsCoreFields(t *testing.T) {
	ps := CheckCodeMaps(SourceCodeMaps{"datix": {
		"event_type":             {"*": {"Incident": "incident", "Near miss": "near_miss"}},
		"patients.physical_harm": {"*": {"No harm": "5", "Death": "death"}},
	}})
	got := problemsText(ps)
	for _, want := range []string{
		`sources.datix.code_maps.event_type.*: maps "Near miss" to "near_miss", which is neither one of incident, risk, outcome, good_care nor its LFPSE code`,
		`sources.datix.code_maps.patients.physical_harm.*: maps "Death" to "death", which is neither one of none, low, moderate, severe, fatal nor its LFPSE code`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", got, want)
		}
	}
	if len(ps) != 2 {
		t.Errorf("got %d problems, want 2: %s", len(ps), got)
	}
}
