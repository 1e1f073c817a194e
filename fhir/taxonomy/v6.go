package taxonomy

import (
	"strings"
	"sync"
)

// V6 returns what psgw assumes of the v6 taxonomy, which NHS England has not published in a
// form psgw holds (LFPSE README §4). It is built once from V5:
//
//   - every v5 profile and complex extension, under its v6 id and url ("-6", the v6
//     canonical base), on the same resource type, with v5's fields and their v5
//     cardinality, value type and value set: psgw assumes fields carried over unchanged;
//   - the v5 fields v6 replaced are left out (Gender) or renamed (Process is
//     HealthcareProcess); Validate reports the old names as RuleRenamedField;
//   - the fields and extensions a working v6 client shows: GenderIdentity and
//     GenderSameAsAtBirth (patient-information-6), LocationWithinServiceOther
//     (location-details-6), StaffAvailabilityIncidentFactor
//     (adverse-event-problem-people-6), adverse-event-core-6 (Description) on the
//     AdverseEvent and medication-dmd-6 (VTMCode, VTMString, VMPCode, VMPString) on the
//     Medication. Their codes are unknown, so their code fields have no ValueSet; the
//     value type of StaffAvailabilityIncidentFactor is unknown too (Type and ValueKey
//     empty) and its cardinality is taken from its siblings, the people-factor lists.
//
// Every v6 extension has Min 0: whether v6's contained resources still require
// location-details and practitioner-details, as v5's do, is not known. Mandatory inner
// fields keep v5's Min. Value sets are v5's, shared with V5.
//
// This is an assumption, not the taxonomy; replace it with NHS England's v6
// StructureDefinitions once they are fetched (docs/mapping.md).
func V6() *Taxonomy { return v6() }

var v6 = sync.OnceValue(func() *Taxonomy { return assumeV6(V5()) })

// v6Renamed are v5 fields v6 renamed, by v5 name; "" means v6 dropped the field.
var v6Renamed = map[string]string{"Process": "HealthcareProcess", "Gender": ""}

// v6AddedFields are the fields v6 added to extensions it kept, by v6 extension id.
var v6AddedFields = map[string][]Field{
	"patient-information-6": {
		{Name: "GenderIdentity", Max: 1, Type: "code", ValueKey: "valueCode"},
		{Name: "GenderSameAsAtBirth", Max: 1, Type: "code", ValueKey: "valueCode"},
	},
	"location-details-6": {
		{Name: "LocationWithinServiceOther", Max: 1, Type: "string", ValueKey: "valueString"},
	},
	"adverse-event-problem-people-6": {
		{Name: "StaffAvailabilityIncidentFactor", Max: 10},
	},
}

// v6AddedExtensions are the extensions v6 added, by resource type.
var v6AddedExtensions = map[string][]Extension{
	"AdverseEvent": {{
		ID: "adverse-event-core-6", SliceName: "AdverseEventCore", Max: 1,
		Description: "Core details of the event (v6; seen in a v6 client)",
		Fields: []*Field{
			{Name: "Description", Max: 1, Type: "string", ValueKey: "valueString"},
		},
	}},
	"Medication": {{
		ID: "medication-dmd-6", SliceName: "MedicationDmd", Max: 1,
		Description: "NHS dm+d ids and names of the medicine (v6; seen in a v6 client)",
		Fields: []*Field{
			{Name: "VTMCode", Max: 1, Type: "code", ValueKey: "valueCode"},
			{Name: "VTMString", Max: 1, Type: "string", ValueKey: "valueString"},
			{Name: "VMPCode", Max: 1, Type: "code", ValueKey: "valueCode"},
			{Name: "VMPString", Max: 1, Type: "string", ValueKey: "valueString"},
		},
	}},
}

// v6ID turns a v5 id into its v6 id: "adverse-event-agent-5" is "adverse-event-agent-6".
func v6ID(v5ID string) string { return strings.TrimSuffix(v5ID, "-5") + "-6" }

func assumeV6(v5 *Taxonomy) *Taxonomy {
	t := &Taxonomy{
		Version:        6,
		CanonicalBase:  V6CanonicalBase,
		Profile:        ProfileURL(6),
		resources:      make(map[string]*Resource, len(v5.resources)),
		resourceByType: make(map[string]*Resource, len(v5.resources)),
		extByURL:       make(map[string]*Extension),
		extByID:        make(map[string]*Extension),
		valueSets:      v5.valueSets,
		ods:            v5.ods,
	}
	for _, r5 := range v5.Resources() {
		id := v6ID(r5.ID)
		r := &Resource{ID: id, Type: r5.Type, URL: structureDefinitionPrefix(6) + id}
		t.resources[id], t.resourceByType[r.Type] = r, r
		for _, e5 := range r5.Extensions {
			e := &Extension{
				ID: v6ID(e5.ID), SliceName: e5.SliceName, Resource: r,
				Max: e5.Max, Description: e5.Description,
			}
			for _, f5 := range e5.Fields {
				f := *f5
				if name, ok := v6Renamed[f.Name]; ok {
					if name == "" {
						continue
					}
					f.Name = name
				}
				e.Fields = append(e.Fields, &f)
			}
			for _, f := range v6AddedFields[e.ID] {
				e.Fields = append(e.Fields, &f)
			}
			t.addExtension(e)
		}
		for _, e := range v6AddedExtensions[r.Type] {
			e.Resource = r
			t.addExtension(&e)
		}
	}
	return t
}

// addExtension indexes e, and its fields, under its id and its v6 url.
func (t *Taxonomy) addExtension(e *Extension) {
	e.URL = structureDefinitionPrefix(6) + e.ID
	e.fields = make(map[string]*Field, len(e.Fields))
	for _, f := range e.Fields {
		e.fields[f.Name] = f
	}
	e.Resource.Extensions = append(e.Resource.Extensions, e)
	t.extByURL[e.URL], t.extByID[e.ID] = e, e
}
