package taxonomy

import "testing"

const pi6 = "contained[0](Patient).extension[patient-information-6]"

func TestValidateV6(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"profile: v5 profile", 6, func(r map[string]any) {
			r["meta"] = decodeJSON(`{"profile":["` + ProfileURL(5) + `"]}`)
		}, []string{"profile meta.profile", "profile meta.profile[0]"}},
		{"required: actuality", 6, func(r map[string]any) {
			delete(r, "actuality")
		}, []string{"required actuality"}},
		{"value-set: actuality potential", 6, func(r map[string]any) {
			r["actuality"] = "potential"
		}, []string{"value-set actuality"}},
		{"required: event", 6, func(r map[string]any) {
			delete(r, "event")
		}, []string{"required event"}},
		{"value-set: event type 5", 6, func(r map[string]any) {
			r["event"] = decodeJSON(`{"coding":[{"code":"5"}]}`)
		}, []string{"value-set event.coding[0].code"}},
		{"value-set: event type as a number", 6, func(r map[string]any) {
			r["event"] = decodeJSON(`{"coding":[{"code":1}]}`)
		}, []string{"value-set event.coding[0].code"}},
		{"unknown-element: event system", 6, func(r map[string]any) {
			r["event"] = decodeJSON(`{"coding":[{"system":"http://example.org","code":"4"}]}`)
		}, []string{"unknown-element event.coding[0].system"}},
		{"structure: event coding empty", 6, func(r map[string]any) {
			r["event"] = decodeJSON(`{"coding":[]}`)
		}, []string{"structure event.coding"}},
		{"unknown-extension: v5 url", 6, func(r map[string]any) {
			addOuter(r, `{"url":"`+s5("adverse-event-agent-5")+`","extension":[{"url":"InvolvedAgents","valueCode":"4"}]}`)
		}, []string{"unknown-extension extension[10]"}},
		{"unknown-extension: no -6 suffix", 6, func(r map[string]any) {
			addOuter(r, `{"url":"`+s6("adverse-event-agent")+`","extension":[{"url":"InvolvedAgents","valueCode":"4"}]}`)
		}, []string{"unknown-extension extension[10]"}},
		{"unknown-extension: on a contained resource", 6, func(r map[string]any) {
			containedAt(r, 3)["extension"] = decodeJSON(`[{"url":"https://example.org/x-6","extension":[{"url":"A","valueCode":"n"}]}]`)
		}, []string{"unknown-extension contained[3](Medication).extension[0]"}},
		{"unknown-field: url as inner name", 6, func(r map[string]any) {
			addInner(outer(r, "adverse-event-agent-6"), `{"url":"https://example.org/DrugsInvolved","valueString":"x"}`)
		}, []string{"unknown-field extension[adverse-event-agent-6].extension[2]"}},
		{"renamed-field: Gender", 6, func(r map[string]any) {
			addInner(patient(r), `{"url":"Gender","valueCode":"1"}`)
		}, []string{"renamed-field " + pi6 + ".extension[7]"}},
		{"renamed-field: Process", 6, func(r map[string]any) {
			addInner(outer(r, "adverse-event-process-6"), `{"url":"Process","valueCode":"6"}`)
		}, []string{"renamed-field extension[adverse-event-process-6].extension[1]"}},
		{"value-type: two values", 6, func(r map[string]any) {
			inner(outer(r, "adverse-event-agent-6"), "InvolvedAgents")["valueString"] = "4"
		}, []string{"value-type extension[adverse-event-agent-6].InvolvedAgents"}},
		{"value-type: bad boolean", 6, func(r map[string]any) {
			inner(outer(r, "adverse-event-reference-metadata-6"), "DataSharingOptOut")["valueBoolean"] = 0.0
		}, []string{"value-type extension[adverse-event-reference-metadata-6].DataSharingOptOut"}},
		{"unknown-field: a made-up inner name", 6, func(r map[string]any) {
			addInner(outer(r, "adverse-event-agent-6"), `{"url":"Dose","valueDecimal":1.5}`)
		}, []string{"unknown-field extension[adverse-event-agent-6].extension[2]"}},
		{"unknown-field: a misspelled inner name", 6, func(r map[string]any) {
			inner(outer(r, "adverse-event-agent-6"), "DrugsInvolved")["url"] = "DrugInvolved"
		}, []string{"unknown-field extension[adverse-event-agent-6].extension[1]"}},
		{"unknown-field: a v6 field on the wrong extension", 6, func(r map[string]any) {
			addInner(outer(r, "adverse-event-agent-6"), `{"url":"GenderIdentity","valueCode":"1"}`)
		}, []string{"unknown-field extension[adverse-event-agent-6].extension[2]"}},
		{"unknown-extension: a made-up v6 extension", 6, func(r map[string]any) {
			addOuter(r, `{"url":"`+s6("adverse-event-made-up-6")+`","extension":[{"url":"Anything","valueString":"x"}]}`)
		}, []string{"unknown-extension extension[10]"}},
		{"unknown-extension: a v6 extension on the wrong resource", 6, func(r map[string]any) {
			addOuter(r, `{"url":"`+s6("medication-dmd-6")+`","extension":[{"url":"VMPCode","valueCode":"39720311000001101"}]}`)
		}, []string{"unknown-extension extension[10]"}},
		{"cardinality: a single-valued field repeated", 6, func(r map[string]any) {
			addInner(outer(r, "adverse-event-agent-6"), `{"url":"SabreReportNumber","valueString":"S1"}`)
			addInner(outer(r, "adverse-event-agent-6"), `{"url":"SabreReportNumber","valueString":"S2"}`)
		}, []string{"cardinality extension[adverse-event-agent-6].SabreReportNumber"}},
		{"cardinality: a v6 field repeated", 6, func(r map[string]any) {
			addInner(patient(r), `{"url":"GenderSameAsAtBirth","valueCode":"n"}`)
		}, []string{"cardinality " + pi6 + ".GenderSameAsAtBirth"}},
		{"cardinality: a multi-select field over its maximum", 6, func(r map[string]any) {
			for range 10 {
				addInner(outer(r, "adverse-event-problem-medication-6"), `{"url":"DrugInvolvementFactors","valueCode":"2"}`)
			}
		}, []string{"cardinality extension[adverse-event-problem-medication-6].DrugInvolvementFactors"}},
		{"cardinality: an extension repeated", 6, func(r map[string]any) {
			addOuter(r, `{"url":"`+s6("detection-factors-6")+`","extension":[{"url":"DetectionPoint","valueCode":"4"}]}`)
		}, []string{"cardinality extension[detection-factors-6]"}},
		{"value-type: a known field with another value kind", 6, func(r map[string]any) {
			ia := inner(outer(r, "adverse-event-agent-6"), "InvolvedAgents")
			delete(ia, "valueCode")
			ia["valueString"] = "4"
		}, []string{"value-type extension[adverse-event-agent-6].InvolvedAgents"}},
		{"fields and extensions a v6 client shows pass", 6, func(r map[string]any) {
			addInner(containedAt(r, 2)["extension"].([]any)[0].(map[string]any), `{"url":"LocationWithinServiceOther","valueString":"Ward 7"}`)
			addOuter(r, `{"url":"`+s6("adverse-event-problem-people-6")+`","extension":[{"url":"StaffAvailabilityIncidentFactor","valueCode":"1"},{"url":"PeopleInvolvementFactors","valueCode":"1"}]}`)
			med := containedAt(r, 3)
			med["extension"] = append(med["extension"].([]any), decodeJSON(`{"url":"`+s6("medication-dmd-6")+
				`","extension":[{"url":"VTMCode","valueCode":"774656009"},{"url":"VTMString","valueString":"Amoxicillin"},`+
				`{"url":"VMPCode","valueCode":"39720311000001101"},{"url":"VMPString","valueString":"Amoxicillin 500mg capsules"}]}`))
		}, nil},
		{"required: PatientSequence", 6, func(r map[string]any) {
			removeInner(patient(r), "PatientSequence")
		}, []string{"required " + pi6 + ".PatientSequence"}},
		{"value-type: PatientSequence as string", 6, func(r map[string]any) {
			inner(patient(r), "PatientSequence")["valueString"] = "1"
			delete(inner(patient(r), "PatientSequence"), "valueInteger")
		}, []string{"value-type " + pi6 + ".PatientSequence"}},
		{"patient-sequence", 6, func(r map[string]any) {
			c := containedAt(r, 0)
			c["extension"] = append(c["extension"].([]any), decodeJSON(
				`{"url":"`+s6("patient-information-6")+`","extension":[{"url":"PatientSequence","valueInteger":3}]}`))
		}, []string{"patient-sequence " + pi6 + "[1].PatientSequence"}},
		{"reference", 6, func(r map[string]any) {
			r["location"] = decodeJSON(`{"reference":"#medication1"}`)
		}, []string{"contained contained[2](Location)", "reference location.reference"}},
		{"contained: Location needs no extension in v6", 6, func(r map[string]any) {
			delete(containedAt(r, 2), "extension")
		}, nil},
		{"nhs-number", 6, func(r map[string]any) {
			inner(outer(r, "adverse-event-core-6"), "Description")["valueString"] = "NHS no " + nhsNumber
		}, []string{"nhs-number extension[0].extension[0].valueString"}},
		{"identifier", 6, func(r map[string]any) {
			containedAt(r, 0)["birthDate"] = "1970-01-01"
		}, []string{"identifier contained[0].birthDate"}},
	})
}

// TestV6 pins what psgw assumes of v6 (docs/mapping.md): v5's extensions under -6 ids on the
// same resources, with v5's fields and cardinality, the renames, and what a v6 client shows.
func TestV6(t *testing.T) {
	v5, v6 := V5(), V6()
	n5, n6 := 0, 0
	for _, r := range v5.Resources() {
		n5 += len(r.Extensions)
	}
	for _, r := range v6.Resources() {
		n6 += len(r.Extensions)
	}
	if n6 != n5+2 {
		t.Errorf("got %d v6 extensions, want v5's %d and 2 new", n6, n5)
	}
	for _, tt := range []struct {
		ext, field string
		max        int // 0: the field must not exist
		resource   string
	}{
		{"adverse-event-process-6", "HealthcareProcess", 1, "AdverseEvent"},
		{"adverse-event-process-6", "Process", 0, "AdverseEvent"},
		{"patient-information-6", "Gender", 0, "Patient"},
		{"patient-information-6", "GenderIdentity", 1, "Patient"},
		{"patient-information-6", "PatientSequence", 1, "Patient"},
		{"location-details-6", "LocationWithinServiceOther", 1, "Location"},
		{"location-details-6", "ServiceArea", 100, "Location"},
		{"adverse-event-problem-people-6", "StaffAvailabilityIncidentFactor", 10, "AdverseEvent"},
		{"adverse-event-core-6", "Description", 1, "AdverseEvent"},
		{"medication-dmd-6", "VMPCode", 1, "Medication"},
	} {
		ext, ok := v6.Extension(s6(tt.ext))
		if !ok {
			t.Errorf("%s: not in V6", tt.ext)
			continue
		}
		if ext.Resource.Type != tt.resource || ext.Min != 0 {
			t.Errorf("%s: on %s min %d, want on %s min 0", tt.ext, ext.Resource.Type, ext.Min, tt.resource)
		}
		f, ok := ext.Field(tt.field)
		switch {
		case tt.max == 0 && ok:
			t.Errorf("%s.%s: in V6, want it left out", tt.ext, tt.field)
		case tt.max > 0 && !ok:
			t.Errorf("%s.%s: not in V6", tt.ext, tt.field)
		case ok && f.Max != tt.max:
			t.Errorf("%s.%s: max %d, want %d", tt.ext, tt.field, f.Max, tt.max)
		}
	}
	if f, _ := v5.Field(s5("patient-information-5"), "Gender"); f == nil || f.Max != 1 {
		t.Error("building V6 changed V5")
	}
}
