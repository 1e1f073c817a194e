package taxonomy

import (
	"strings"
	"testing"
)

func TestV5Counts(t *testing.T) {
	tax := V5()
	var exts, fields, codes int
	for _, r := range tax.Resources() {
		exts += len(r.Extensions)
		for _, e := range r.Extensions {
			fields += len(e.Fields)
		}
	}
	for _, vs := range tax.valueSets {
		if vs != tax.ods {
			codes += len(vs.Codes)
		}
	}
	tests := []struct {
		name      string
		got, want int
	}{
		{"version", tax.Version, 5},
		{"profiles", len(tax.Resources()), 6},
		{"extensions", exts, 25},
		{"fields", fields, 147},
		{"value sets", len(tax.valueSets), 76},
		{"codes", codes, 735},
		{"ods codes", len(tax.ods.Codes), 16496},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
	if V5() != tax {
		t.Error("got a second decode, want V5 to return the same value")
	}
}

func TestURLs(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"base 5", CanonicalBase(5), V5CanonicalBase},
		{"base 6", CanonicalBase(6), V6CanonicalBase},
		{"base 4", CanonicalBase(4), ""},
		{"profile 5", ProfileURL(5), V5CanonicalBase + "/StructureDefinition/patient-safety-adverse-event-5"},
		{"profile 6", ProfileURL(6), V6CanonicalBase + "/StructureDefinition/patient-safety-adverse-event-6"},
		{"profile 7", ProfileURL(7), ""},
		{"extension 5", ExtensionURL(5, "adverse-event-agent"), V5CanonicalBase + "/StructureDefinition/adverse-event-agent-5"},
		{"extension 6", ExtensionURL(6, "adverse-event-core"), V6CanonicalBase + "/StructureDefinition/adverse-event-core-6"},
		{"profile matches the data", ProfileURL(5), V5().Profile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestLookups(t *testing.T) {
	tax := V5()
	agentURL := ExtensionURL(5, "adverse-event-agent")
	ext, ok := tax.Extension(agentURL)
	if !ok {
		t.Fatalf("got no extension for %s, want adverse-event-agent-5", agentURL)
	}
	if byID, _ := tax.ExtensionByID("adverse-event-agent-5"); byID != ext {
		t.Errorf("got %v by id, want the same extension as by url", byID)
	}
	if ext.Resource.Type != "AdverseEvent" || ext.Min != 0 || ext.Max != 1 {
		t.Errorf("got %s %d..%d, want AdverseEvent 0..1", ext.Resource.Type, ext.Min, ext.Max)
	}
	f, ok := tax.Field(agentURL, "InvolvedAgents")
	if !ok || f.Min != 1 || f.Max != 100 || f.ValueKey != "valueCode" || f.ValueSet != "agent-type-5" {
		t.Errorf("got %+v, want InvolvedAgents 1..100 valueCode agent-type-5", f)
	}
	if _, ok := tax.Field(agentURL, "Nope"); ok {
		t.Error("got a field Nope, want none")
	}
	if _, ok := tax.Field("https://example.org/x", "InvolvedAgents"); ok {
		t.Error("got a field on an unknown extension, want none")
	}
	loc, _ := tax.ExtensionByID("location-details-5")
	if loc.Resource.Type != "Location" || loc.Min != 1 || loc.Max != 1 {
		t.Errorf("got location-details-5 on %s %d..%d, want Location 1..1", loc.Resource.Type, loc.Min, loc.Max)
	}
	if r, ok := tax.ResourceForType("Patient"); !ok || r.ID != "adverse-event-patient-5" {
		t.Errorf("got %v, want adverse-event-patient-5", r)
	}
	if r, ok := tax.Resource("adverse-event-device-5"); !ok || r.Type != "Device" {
		t.Errorf("got %v, want the Device profile", r)
	}
}

func TestValueSets(t *testing.T) {
	tax := V5()
	gender, ok := tax.ValueSet("gender-5")
	if !ok {
		t.Fatal("got no gender-5, want it")
	}
	tests := []struct {
		name    string
		vs      string
		display string
		want    string
		wantOK  bool
	}{
		{"empty display", "staff-type-5", "", "", false},
		{"age bracket", "age-brackets-5", "16 and 17 years", "7", true},
		{"case and space ignored", "age-brackets-5", "  16 AND 17 YEARS ", "7", true},
		{"unknown display", "age-brackets-5", "ancient", "", false},
		{"ods name", "ods-codes-5", "nhs improvement", "Z01", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, ok := tax.ValueSet(tt.vs)
			if !ok {
				t.Fatalf("got no value set %s", tt.vs)
			}
			got, ok := vs.CodeForDisplay(tt.display)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("CodeForDisplay(%q) = %q, %v, want %q, %v", tt.display, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if !gender.Has("1") || gender.Has("01") || gender.Has("") {
		t.Error("got wrong membership for gender-5, want 1 in, 01 and empty out")
	}
	if d, ok := gender.Display("1"); !ok || !strings.EqualFold(d, "female") {
		t.Errorf("got display %q, want Female", d)
	}
	if _, ok := tax.ValueSet("nope-5"); ok {
		t.Error("got value set nope-5, want none")
	}
}

func TestODS(t *testing.T) {
	tax := V5()
	tests := []struct {
		code     string
		want     bool
		wantName string
	}{
		{"RRK", true, "UNIVERSITY HOSPITALS BIRMINGHAM NHS FOUNDATION TRUST"},
		{"Z01", true, "NHS Improvement"},
		{"Z45", false, ""},
		{"rrk", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := tax.IsODSCode(tt.code); got != tt.want {
				t.Errorf("IsODSCode(%q) = %v, want %v", tt.code, got, tt.want)
			}
			if got := tax.ODSName(tt.code); got != tt.wantName {
				t.Errorf("ODSName(%q) = %q, want %q", tt.code, got, tt.wantName)
			}
		})
	}
}

func TestAmbiguousDisplay(t *testing.T) {
	vs := &ValueSet{ID: "x"}
	if err := vs.index([]fileCode{{"1", "Other"}, {"2", "other"}, {"3", "Unknown"}}); err != nil {
		t.Fatal(err)
	}
	if code, ok := vs.CodeForDisplay("other"); ok {
		t.Errorf("got %q, want no code for an ambiguous display", code)
	}
	if code, _ := vs.CodeForDisplay("unknown"); code != "3" {
		t.Errorf("got %q, want 3", code)
	}
}

func TestDecodeRejectsBadData(t *testing.T) {
	const good = `{"version":5,"canonical_base":"B","profile":"B/StructureDefinition/ae-5",
	"resources":{"ae-5":{"resource_type":"AdverseEvent","url":"B/StructureDefinition/ae-5","extensions":[%s]}},
	"value_sets":{"ods":{"codes_file":"x.tsv"},"vs":{"codes":[{"code":"1","display":"One"}]}}}`
	ext := func(field string) string {
		return strings.Replace(good, "%s", `{"id":"e-5","url":"B/StructureDefinition/e-5","min":0,"max":1,"fields":[`+field+`]}`, 1)
	}
	tests := []struct {
		name string
		json string
		ods  string
		ok   bool
	}{
		{"good", ext(`{"name":"F","min":0,"max":1,"type":"code","value_key":"valueCode","value_set":"vs"}`), "A\tOrg\n", true},
		{"not json", "{", "", false},
		{"bad ods line", ext(""), "nocolumn\n", false},
		{"wrong value key", ext(`{"name":"F","min":0,"max":1,"type":"code","value_key":"valueString","value_set":"vs"}`), "", false},
		{"unknown value set", ext(`{"name":"F","min":0,"max":1,"type":"code","value_key":"valueCode","value_set":"no"}`), "", false},
		{"code without value set", ext(`{"name":"F","min":0,"max":1,"type":"code","value_key":"valueCode"}`), "", false},
		{"bad cardinality", ext(`{"name":"F","min":2,"max":1,"type":"string","value_key":"valueString"}`), "", false},
		{"duplicate field", ext(`{"name":"F","min":0,"max":1,"type":"string","value_key":"valueString"},{"name":"F","min":0,"max":1,"type":"string","value_key":"valueString"}`), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.json), []byte(tt.ods))
			if (err == nil) != tt.ok {
				t.Errorf("got error %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
