package fhir

import (
	"strings"
	"testing"
)

// TestCodedValuesAreNotQuoted: a coded field may hold a patient's name and date of birth that
// psgw was never told are identifiers (issue 15, item 3). Reasons and warnings go to the
// status page, the API and the CLI, so such a value is described, never quoted; a value that
// reads as a code still is, so that an operator knows what to map. psgw map (QuoteValues)
// shows it, since its operator holds the record.
func TestCodedValuesAreNotQuoted(t *testing.T) {
	const leak = "Jane Doelittle DOB 01/03/1975"
	body := `{` + fidelityBase + `,"event_type":"incident","occurred_at":"2025-03-14",
		"reporter":{"role":"` + leak + `"},
		"location":{"organisation":"RRK","service_area":"` + leak + `"},
		"time_of_day":"` + leak + `",
		"patients":[{"ethnicity":"` + leak + `","physical_harm":"none"}],
		"Jane Doelittle 01/03/1975":"x"}`
	in, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	for _, v := range []int{5, 6} {
		for _, quarantine := range []bool{false, true} {
			b := &Builder{Version: v}
			if quarantine {
				b.QuarantineFallbacks = func(string) bool { return true }
			}
			prep := b.Prepare(in)
			var shown []string
			for _, p := range prep.Problems {
				shown = append(shown, p.String())
			}
			for _, w := range prep.Warnings {
				shown = append(shown, w.String())
			}
			if len(prep.Problems) == 0 || len(prep.Warnings) == 0 {
				t.Fatalf("v%d: got problems %v and warnings %v, want both", v, prep.Problems, prep.Warnings)
			}
			all := strings.Join(shown, "\n")
			for _, s := range []string{"Jane", "Doelittle", "01/03/1975"} {
				if strings.Contains(all, s) {
					t.Errorf("v%d quarantine=%v: %q shown in\n%s", v, quarantine, s, all)
				}
			}
			for _, want := range []string{"reporter.role: value [29 characters, not shown: psgw map on the record shows it]",
				"[key of 25 characters, not shown]: unknown field"} {
				if !strings.Contains(all, want) {
					t.Errorf("v%d quarantine=%v: want %q in\n%s", v, quarantine, want, all)
				}
			}
		}
		quoted := (&Builder{Version: v, QuoteValues: true}).Prepare(in)
		var found bool
		for _, w := range quoted.Warnings {
			found = found || strings.Contains(w.Message, `"`+leak+`"`)
		}
		if !found {
			t.Errorf("v%d: with QuoteValues, want the value quoted in a warning; got %v", v, quoted.Warnings)
		}
	}
}

// TestDecodeAcceptedKeepsFieldWarnings: the mapper reads stored records with DecodeAccepted,
// and the delivery record keeps the warnings, so a misspelt field is named there too.
func TestDecodeAcceptedKeepsFieldWarnings(t *testing.T) {
	body := []byte(`{` + fidelityBase + `,"event_type":"risk","patients":[{"physicalHarm":"severe"}]}`)
	in, ps := DecodeAccepted(body, ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if len(in.Warnings) != 1 || in.Warnings[0].Field != "patients[0].physicalHarm" || in.Warnings[0].Kind != WarnUnknownField {
		t.Fatalf("got warnings %v, want one for patients[0].physicalHarm", in.Warnings)
	}
	parsed, _ := ParseIncident(body, ParseOptions{Now: goldenNow})
	if in.Warnings[0] != parsed.Warnings[0] {
		t.Errorf("DecodeAccepted warned %v, ParseIncident %v", in.Warnings[0], parsed.Warnings[0])
	}
}
