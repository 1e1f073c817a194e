package fhir

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const schemaFile = "../docs/incident.schema.json"

// schemaRules are the ingest rules of docs/api.md ("Ingest") and of Validate, by JSON path.
var schemaRules = map[string]map[string]any{
	"source":                                    {"pattern": "^[a-z0-9_-]{1,64}$", "description": "the sending system"},
	"local_id":                                  {"minLength": 1, "maxLength": MaxLocalID, "description": "the incident's id in the source system"},
	"revision":                                  {"minimum": 1, "maximum": MaxRevision, "description": "a higher revision amends the incident"},
	"event_type":                                {"enum": []string{EventIncident, EventRisk, EventOutcome, EventGoodCare}},
	"occurred_at":                               {"description": "RFC 3339 date-time or YYYY-MM-DD; required for incident and outcome; not after reported_at; its UK calendar date not before 1900-01-01; at most 24 hours ahead of the gateway's clock; sent on the UK wall clock"},
	"reported_at":                               {"description": "RFC 3339 date-time or YYYY-MM-DD; its UK calendar date not before 1900-01-01; at most 24 hours ahead of the gateway's clock"},
	"description":                               {"minLength": 1, "maxLength": MaxDescription},
	"patients":                                  {"maxItems": MaxPatients},
	"patients.nhs_number":                       {"pattern": "^[0-9]{10}$", "description": "Modulus 11 checked; never sent"},
	"patients.local_patient_id":                 {"maxLength": 64, "description": "never sent"},
	"patients.date_of_birth":                    {"format": "date", "description": "YYYY-MM-DD, not after the UK calendar date of occurred_at; never sent, gives the age (none, with a warning, for a placeholder date or an age over 120 years)"},
	"patients.sex":                              {"enum": []string{"female", "male", "other", "unknown"}},
	"patients.physical_harm":                    {"enum": []string{"none", "low", "moderate", "severe", "fatal"}},
	"patients.psychological_harm":               {"enum": []string{"none", "low", "moderate", "severe"}},
	"patients.gender_same_as_at_birth":          {"enum": []string{"yes", "no", "unknown", "y", "n", "u"}},
	"location.organisation":                     {"pattern": "^[A-Z0-9]{3,10}$", "description": "ODS code"},
	"reporter.organisation":                     {"pattern": "^[A-Z0-9]{3,10}$", "description": "ODS code"},
	"agents.medications":                        {"maxItems": MaxAgents},
	"agents.devices":                            {"maxItems": MaxAgents},
	"agents.medications.vtm_code":               {"pattern": "^[0-9]{6,18}$"},
	"agents.medications.vmp_code":               {"pattern": "^[0-9]{6,18}$"},
	"agents.medications.administered":           {"enum": []string{"yes", "no", "unknown", "y", "n", "u"}, "description": "did the medicine reach the patient; LFPSE has no question for it, so it is not sent (with a warning)"},
	"agents.medications.administered_by_device": {"enum": []string{"yes", "no", "unknown", "y", "n", "u"}, "description": "was the medicine given using a device (LFPSE MedicationAdministration)"},
	"patients.age_years":                        {"minimum": 0, "maximum": 150, "description": "whole years at the incident, for sources without the date of birth; sent as years*372; 0 is under one year"},
}

// incidentSchema derives the JSON Schema of the incident from the Go model, so the document
// cannot drift from the code.
func incidentSchema() map[string]any {
	s := typeSchema(reflect.TypeOf(Incident{}), "")
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://github.com/psgw/psgw/docs/incident.schema.json"
	s["title"] = "psgw incident"
	s["description"] = "One patient-safety event as psgw's HTTP ingest API accepts it (docs/api.md, Ingest). Coded answers take a source's local code (through its code maps), an LFPSE code or an LFPSE display; docs/mapping.md says where each field goes."
	s["required"] = []string{"source", "local_id", "event_type", "description"}
	return s
}

func typeSchema(t reflect.Type, path string) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var s map[string]any
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, path, props)
		s = map[string]any{"type": "object", "properties": props}
	case reflect.Slice:
		s = map[string]any{"type": "array", "items": typeSchema(t.Elem(), path)}
		if t.Elem().Kind() == reflect.String {
			s["maxItems"] = MaxListItems
		}
	case reflect.String:
		s = map[string]any{"type": "string"}
	case reflect.Int:
		s = map[string]any{"type": "integer"}
	case reflect.Bool:
		s = map[string]any{"type": "boolean"}
	}
	for k, v := range schemaRules[path] {
		s[k] = v
	}
	return s
}

func addFields(t reflect.Type, path string, props map[string]any) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			addFields(f.Type, path, props)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue // the gateway's own, never in the JSON (Warnings, Received)
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		props[name] = typeSchema(f.Type, p)
	}
}

// TestSchemaUpToDate keeps docs/incident.schema.json equal to the model; -update rewrites it.
func TestSchemaUpToDate(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(incidentSchema()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSchemaUpToDate -update)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("%s is stale (-file +model); run go test ./fhir -run TestSchemaUpToDate -update:\n%s", schemaFile, diff)
	}
}

// TestPayloadEncoder checks that the direct encoder writes what encoding/json would.
func TestPayloadEncoder(t *testing.T) {
	for _, c := range loadGoldenCases(t) {
		in, ps := ParseIncident(c.input, ParseOptions{Now: goldenNow})
		if len(ps) > 0 {
			continue
		}
		res := c.builder().Build(in)
		if res.Resource == nil {
			continue
		}
		raw, err := json.Marshal(res.Resource)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(doc)
		if got := encodeDoc(nil, res.Resource.doc()); string(got) != string(want) {
			t.Errorf("%s: direct encoding differs from encoding/json:\n%s", c.dir, cmp.Diff(string(want), string(got)))
		}
	}
	got := string(encodeDoc(nil, map[string]any{"a": "x<\"\\\n\t\u2028é\x01", "n": 3, "b": true, "l": []any{1.5, nil}}))
	want := `{"a":"x\u003c\"\\\n\t\u2028é\u0001","b":true,"l":[1.5,null],"n":3}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
