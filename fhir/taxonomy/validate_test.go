package taxonomy

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

const nhsNumber = "9434765919" // the NHS's own example; passes Modulus 11

func TestWorkedExamplesAreValid(t *testing.T) {
	for _, v := range []int{5, 6} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			if got := Validate(v, example(t, v)); len(got) != 0 {
				t.Errorf("got %d problems, want none:\n%s", len(got), joinProblems(got))
			}
		})
	}
}

func TestWorkedExampleIsNotValidInTheOtherVersion(t *testing.T) {
	if got := Validate(6, example(t, 5)); len(got) == 0 {
		t.Error("got no problems validating the v5 example as v6, want some")
	}
	if got := Validate(5, example(t, 6)); len(got) == 0 {
		t.Error("got no problems validating the v6 example as v5, want some")
	}
}

type validateCase struct {
	name    string
	version int
	mutate  func(r map[string]any)
	want    []string // "rule path", in Validate's order
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := example(t, tt.version)
			tt.mutate(r)
			got := Validate(tt.version, r)
			if fmt.Sprint(summary(got)) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q\n%s", summary(got), tt.want, joinProblems(got))
			}
			for _, p := range got {
				if strings.Contains(p.String(), nhsNumber) {
					t.Errorf("problem %q reveals an NHS number", p)
				}
			}
		})
	}
}

func joinProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\t%s [%s]\n", p, p.Rule)
	}
	return b.String()
}

const pi = "contained[0](Patient).extension[patient-information-5]"

func TestValidateV5(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"structure: extension not an array", 5, func(r map[string]any) {
			r["extension"] = map[string]any{}
		}, []string{"structure extension"}},
		{"structure: empty array", 5, func(r map[string]any) {
			outer(r, "adverse-event-outcome-5")["extension"] = []any{}
		}, []string{"structure extension[adverse-event-outcome-5].extension"}},
		{"resource-type", 5, func(r map[string]any) {
			r["resourceType"] = "Patient"
		}, []string{"resource-type resourceType"}},
		{"required: resourceType", 5, func(r map[string]any) {
			delete(r, "resourceType")
		}, []string{"required resourceType"}},
		{"profile: missing meta", 5, func(r map[string]any) {
			delete(r, "meta")
		}, []string{"profile meta.profile"}},
		{"profile: v6 profile", 5, func(r map[string]any) {
			r["meta"] = decodeJSON(`{"profile":["` + ProfileURL(6) + `"]}`)
		}, []string{"profile meta.profile", "profile meta.profile[0]"}},
		{"profile: extra profiles are fine", 5, func(r map[string]any) {
			r["meta"] = decodeJSON(`{"profile":["https://example.org/p","` + ProfileURL(5) + `"]}`)
		}, nil},
		{"unknown-element: base element", 5, func(r map[string]any) {
			r["status"] = "completed"
		}, []string{"unknown-element status"}},
		{"unknown-element: odd keys are quoted in paths", 5, func(r map[string]any) {
			r[""] = 1
			r["[0]"] = 1
		}, []string{`unknown-element ""`, `unknown-element "[0]"`}},
		{"unknown-element: contained resource element", 5, func(r map[string]any) {
			containedAt(r, 0)["gender"] = "female"
		}, []string{"unknown-element contained[0](Patient).gender"}},
		{"unknown-element: reference display", 5, func(r map[string]any) {
			r["subject"].(map[string]any)["display"] = "someone"
		}, []string{"unknown-element subject.display"}},
		{"unknown-element: value on a complex extension", 5, func(r map[string]any) {
			outer(r, "adverse-event-outcome-5")["valueString"] = "x"
		}, []string{"unknown-element extension[adverse-event-outcome-5].valueString"}},
		{"unknown-extension: unknown url", 5, func(r map[string]any) {
			addOuter(r, `{"url":"`+s5("not-a-thing-5")+`","extension":[{"url":"X","valueString":"x"}]}`)
		}, []string{"unknown-extension extension[9]"}},
		{"unknown-extension: wrong resource", 5, func(r map[string]any) {
			addOuter(r, `{"url":"`+s5("patient-information-5")+`","extension":[{"url":"PatientSequence","valueInteger":1}]}`)
		}, []string{"unknown-extension extension[9]"}},
		{"unknown-extension: v6 url", 5, func(r map[string]any) {
			outer(r, "adverse-event-agent-5")["url"] = s6("adverse-event-agent-6")
		}, []string{"unknown-extension extension[1]"}},
		{"unknown-field", 5, func(r map[string]any) {
			addInner(outer(r, "adverse-event-agent-5"), `{"url":"Colour","valueString":"red"}`)
		}, []string{"unknown-field extension[adverse-event-agent-5].extension[2]"}},
		{"cardinality: outer extension", 5, func(r map[string]any) {
			addOuter(r, `{"url":"`+s5("adverse-event-outcome-5")+`","extension":[{"url":"WentWell","valueString":"x"}]}`)
		}, []string{"cardinality extension[adverse-event-outcome-5]"}},
		{"cardinality: inner field", 5, func(r map[string]any) {
			addInner(outer(r, "adverse-event-process-5"), `{"url":"Process","valueCode":"1"}`)
		}, []string{"cardinality extension[adverse-event-process-5].Process"}},
		{"cardinality: patient-information over 100", 5, func(r map[string]any) {
			c := containedAt(r, 0)
			for i := 2; i <= 101; i++ {
				c["extension"] = append(c["extension"].([]any), decodeJSON(
					fmt.Sprintf(`{"url":"%s","extension":[{"url":"PatientSequence","valueInteger":%d}]}`, s5("patient-information-5"), i)))
			}
		}, []string{"cardinality " + pi}},
		{"required: inner field", 5, func(r map[string]any) {
			removeInner(outer(r, "adverse-event-agent-5"), "InvolvedAgents")
		}, []string{"required extension[adverse-event-agent-5].InvolvedAgents"}},
		{"required: location-details-5 on a Location", 5, func(r map[string]any) {
			delete(containedAt(r, 2), "extension")
		}, []string{"required contained[2](Location).extension[location-details-5]"}},
		{"required: complex extension with no inner extensions", 5, func(r map[string]any) {
			delete(outer(r, "adverse-event-outcome-5"), "extension")
		}, []string{"required extension[adverse-event-outcome-5]"}},
		{"required: suspectEntity.instance", 5, func(r map[string]any) {
			r["suspectEntity"] = decodeJSON(`[{"instance":{"reference":"#medication1"}},{}]`)
		}, []string{"required suspectEntity[1].instance"}},
		{"value-type: wrong value key", 5, func(r map[string]any) {
			g := inner(patient(r), "Gender")
			delete(g, "valueCode")
			g["valueString"] = "1"
		}, []string{"value-type " + pi + "[0].Gender"}},
		{"value-type: two values", 5, func(r map[string]any) {
			inner(patient(r), "Gender")["valueString"] = "1"
		}, []string{"value-type " + pi + "[0].Gender"}},
		{"value-type: no value", 5, func(r map[string]any) {
			delete(inner(patient(r), "Gender"), "valueCode")
		}, []string{"value-type " + pi + "[0].Gender"}},
		{"value-type: numeric code", 5, func(r map[string]any) {
			inner(patient(r), "Gender")["valueCode"] = 1.0
		}, []string{"value-type " + pi + "[0].Gender"}},
		{"value-type: fractional integer", 5, func(r map[string]any) {
			inner(patient(r), "AgeAtTimeOfIncidentDays")["valueInteger"] = 1.5
		}, []string{"value-type " + pi + "[0].AgeAtTimeOfIncidentDays"}},
		{"value-type: integer out of range", 5, func(r map[string]any) {
			inner(patient(r), "AgeAtTimeOfIncidentDays")["valueInteger"] = 3e9
		}, []string{"value-type " + pi + "[0].AgeAtTimeOfIncidentDays"}},
		{"value-type: Go int is accepted", 5, func(r map[string]any) {
			inner(patient(r), "AgeAtTimeOfIncidentDays")["valueInteger"] = 18600
		}, nil},
		{"value-type: boolean as string", 5, func(r map[string]any) {
			inner(outer(r, "adverse-event-reference-metadata-5"), "DataSharingOptOut")["valueBoolean"] = "false"
		}, []string{"value-type extension[adverse-event-reference-metadata-5].DataSharingOptOut"}},
		{"value-type: impossible date", 5, func(r map[string]any) {
			addInner(outer(r, "adverse-event-estimated-date-5"), `{"url":"TodaysDate","valueDate":"2025-02-30"}`)
		}, []string{"value-type extension[adverse-event-estimated-date-5].TodaysDate"}},
		{"value-type: valid date and time", 5, func(r map[string]any) {
			addInner(outer(r, "adverse-event-estimated-date-5"), `{"url":"TodaysDate","valueDate":"2024-02-29"}`)
			addInner(outer(r, "adverse-event-estimated-date-5"), `{"url":"PreciseTime","valueTime":"23:59:59"}`)
		}, nil},
		{"value-type: bad time", 5, func(r map[string]any) {
			addInner(outer(r, "adverse-event-estimated-date-5"), `{"url":"PreciseTime","valueTime":"9:30:00"}`)
		}, []string{"value-type extension[adverse-event-estimated-date-5].PreciseTime"}},
		{"value-type: empty string", 5, func(r map[string]any) {
			inner(outer(r, "adverse-event-outcome-5"), "ImmediateActions")["valueString"] = " "
		}, []string{"value-type extension[adverse-event-outcome-5].ImmediateActions"}},
		{"value-type: repeated field is indexed", 5, func(r map[string]any) {
			addInner(outer(r, "adverse-event-agent-5"), `{"url":"InvolvedAgents","valueBoolean":true}`)
		}, []string{"value-type extension[adverse-event-agent-5].InvolvedAgents[1]"}},
		{"value-type: resource id", 5, func(r map[string]any) {
			r["id"] = "has space"
		}, []string{"value-type id"}},
		{"value-set", 5, func(r map[string]any) {
			inner(patient(r), "Gender")["valueCode"] = "9"
		}, []string{"value-set " + pi + "[0].Gender"}},
		{"value-set: codes are strings, 01 is not 1", 5, func(r map[string]any) {
			inner(patient(r), "Gender")["valueCode"] = "01"
		}, []string{"value-set " + pi + "[0].Gender"}},
		{"ods-code", 5, func(r map[string]any) {
			inner(containedAt(r, 1)["extension"].([]any)[0].(map[string]any), "ReporterOrganisation")["valueCode"] = "Z45"
		}, []string{"ods-code contained[1](Practitioner).extension[practitioner-details-5].ReporterOrganisation"}},
		{"patient-sequence: duplicate", 5, func(r map[string]any) {
			c := containedAt(r, 0)
			c["extension"] = append(c["extension"].([]any), decodeJSON(
				`{"url":"`+s5("patient-information-5")+`","extension":[{"url":"PatientSequence","valueInteger":1}]}`))
		}, []string{"patient-sequence " + pi + "[1].PatientSequence"}},
		{"patient-sequence: not 1..n", 5, func(r map[string]any) {
			inner(patient(r), "PatientSequence")["valueInteger"] = 2.0
		}, []string{"patient-sequence " + pi + "[0].PatientSequence"}},
		{"patient-sequence: two patients numbered 1 and 2", 5, func(r map[string]any) {
			c := containedAt(r, 0)
			c["extension"] = append([]any{decodeJSON(
				`{"url":"` + s5("patient-information-5") + `","extension":[{"url":"PatientSequence","valueInteger":2}]}`)},
				c["extension"].([]any)...)
		}, nil},
		{"contained: duplicate id", 5, func(r map[string]any) {
			containedAt(r, 3)["id"] = "patient1"
		}, []string{"contained contained[3](Medication).id", "reference suspectEntity[0].instance.reference"}},
		{"contained: missing id", 5, func(r map[string]any) {
			delete(containedAt(r, 3), "id")
		}, []string{"contained contained[3](Medication).id", "reference suspectEntity[0].instance.reference"}},
		{"contained: bad id", 5, func(r map[string]any) {
			containedAt(r, 3)["id"] = "med/1"
			r["suspectEntity"] = decodeJSON(`[{"instance":{"reference":"#med/1"}}]`)
		}, []string{"contained contained[3](Medication).id", "reference suspectEntity[0].instance.reference"}},
		{"contained: unreferenced", 5, func(r map[string]any) {
			delete(r, "suspectEntity")
		}, []string{"contained contained[3](Medication)"}},
		{"contained: not an object", 5, func(r map[string]any) {
			r["contained"] = append(r["contained"].([]any), "x")
		}, []string{"structure contained[4]"}},
		{"resource-type: contained Observation", 5, func(r map[string]any) {
			r["contained"] = append(r["contained"].([]any), decodeJSON(`{"resourceType":"Observation","id":"o1"}`))
		}, []string{"resource-type contained[4].resourceType"}},
		{"reference: not local", 5, func(r map[string]any) {
			r["subject"] = decodeJSON(`{"reference":"Patient/patient1"}`)
		}, []string{"contained contained[0](Patient)", "reference subject.reference"}},
		{"reference: dangling", 5, func(r map[string]any) {
			r["recorder"] = decodeJSON(`{"reference":"#nobody"}`)
		}, []string{"contained contained[1](Practitioner)", "reference recorder.reference"}},
		{"reference: wrong type", 5, func(r map[string]any) {
			r["subject"] = decodeJSON(`{"reference":"#location1"}`)
			r["location"] = decodeJSON(`{"reference":"#patient1"}`)
		}, []string{"reference location.reference", "reference subject.reference"}},
		{"reference: device is a valid suspect entity", 5, func(r map[string]any) {
			r["contained"] = append(r["contained"].([]any), decodeJSON(`{"resourceType":"Device","id":"d1"}`))
			r["suspectEntity"] = append(r["suspectEntity"].([]any), decodeJSON(`{"instance":{"reference":"#d1"}}`))
		}, nil},
		{"date: wrong format", 5, func(r map[string]any) {
			r["date"] = "14/03/2025"
		}, []string{"date date"}},
		{"date: RFC 3339 date-time", 5, func(r map[string]any) {
			r["date"] = "2025-03-14T10:30:00+00:00"
		}, nil},
		{"description: empty", 5, func(r map[string]any) {
			r["description"] = ""
		}, []string{"description description"}},
		{"description: too long", 5, func(r map[string]any) {
			r["description"] = strings.Repeat("é", MaxDescription+1)
		}, []string{"description description"}},
		{"description: at the limit", 5, func(r map[string]any) {
			r["description"] = strings.Repeat("é", MaxDescription)
		}, nil},
		{"identifier: element", 5, func(r map[string]any) {
			containedAt(r, 0)["name"] = decodeJSON(`[{"family":"Smith"}]`)
		}, []string{"identifier contained[0].name"}},
		{"identifier: inner extension", 5, func(r map[string]any) {
			addInner(patient(r), `{"url":"NHSNumber","valueString":"`+nhsNumber+`"}`)
		}, []string{"identifier contained[0].extension[0].extension[6]", "nhs-number contained[0].extension[0].extension[6].valueString"}},
		{"nhs-number: free text", 5, func(r map[string]any) {
			r["description"] = "Patient " + nhsNumber + " given dose late"
		}, []string{"nhs-number description"}},
		{"nhs-number: in a code", 5, func(r map[string]any) {
			inner(patient(r), "Gender")["valueCode"] = nhsNumber
		}, []string{"value-set " + pi + "[0].Gender", "nhs-number contained[0].extension[0].extension[2].valueCode"}},
	})
}

func TestValidateVersion(t *testing.T) {
	for _, v := range []int{0, 4, 7, -5} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			got := Validate(v, example(t, 5))
			if len(got) != 1 || got[0].Rule != RuleVersion || got[0].Path != "" {
				t.Errorf("got %v, want one version problem", got)
			}
		})
	}
}

func TestValidateNilAndEmpty(t *testing.T) {
	for _, v := range []int{5, 6} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			got := summary(Validate(v, nil))
			want := []string{"profile meta.profile", "required resourceType"}
			if v == 6 {
				want = []string{"required actuality", "required event", "profile meta.profile", "required resourceType", "required subject"}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "date", Rule: RuleDate, Message: "bad"}, "date: bad"},
		{Problem{Rule: RuleVersion, Message: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestProblemsSortNumerically(t *testing.T) {
	ps := problems{
		{Path: "contained[10].id", Rule: "a"},
		{Path: "contained[2].id", Rule: "a"},
		{Path: "contained[2].id", Rule: "a"},
		{Path: "contained[02].id", Rule: "b"},
		{Path: "", Rule: "a"},
	}
	got := fmt.Sprint(summary(ps.sorted()))
	want := "[a  a contained[2].id b contained[02].id a contained[10].id]"
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestMessagesQuotePayloadStringsSafely(t *testing.T) {
	long := strings.Repeat("x", 500)
	if got := quote(long); len(got) > 210 {
		t.Errorf("got %d bytes, want a cut value", len(got))
	}
	if got := quote("a" + nhsNumber); strings.Contains(got, nhsNumber) {
		t.Errorf("got %s, want the NHS number redacted", got)
	}
	if got := quote(strings.Repeat("é", 150)); !strings.HasSuffix(got, `..."`) || !utf8.ValidString(got) {
		t.Errorf("got %s, want a cut on a rune boundary", got)
	}
}

func BenchmarkValidateV5(b *testing.B) {
	r := example(b, 5)
	V5()
	b.ReportAllocs()
	for b.Loop() {
		if ps := Validate(5, r); len(ps) != 0 {
			b.Fatalf("got %v, want no problems", ps)
		}
	}
}
