package fhir

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAnswersOfGoldens checks that the learning data's coded answers are those the payload
// carries, in the ingest API's words where it has them.
func TestAnswersOfGoldens(t *testing.T) {
	for name, want := range map[string]Answers{
		"incident-v6-several-patients": {EventType: "incident",
			PhysicalHarm: []string{"low", "none", "moderate", ""}, PsychologicalHarm: []string{"none", "", "low", ""},
			// 84 years (11), 13 days (1), 34 years from age_years (9), and the bracket sent as such.
			AgeBands:     []string{"11", "1", "9", "8"},
			Organisation: "RRK", ServiceArea: "1", WithinService: "4", ReporterRole: "5", ReporterOrganisation: "RRK"},
		"agents-all-v6": {EventType: "incident", Organisation: "RRK", ServiceArea: "1", WithinService: "4",
			ReporterRole: "5", ReporterOrganisation: "RRK",
			Agents: []string{"medications", "devices", "it_systems", "buildings", "estates", "blood", "blood_products", "tissues"}},
	} {
		t.Run(name, func(t *testing.T) {
			var c goldenCase
			for _, gc := range loadGoldenCases(t) {
				if filepath.Base(gc.dir) == name {
					c = gc
				}
			}
			in, problems := ParseIncident(c.input, ParseOptions{Now: goldenNow, Codes: c.builder().Codes})
			if len(problems) > 0 {
				t.Fatalf("parse: %v", problems)
			}
			p := c.builder().Prepare(in)
			if len(p.Problems) > 0 {
				t.Fatalf("prepare: %v", p.Problems)
			}
			if diff := cmp.Diff(want, p.Answers); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}
