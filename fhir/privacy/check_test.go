package privacy

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "rule path"
	}{
		{
			name: "clean",
			in:   `{"resourceType":"AdverseEvent","description":"dose late","contained":[{"resourceType":"Patient","id":"p1","extension":[{"url":"S/patient-information-5","extension":[{"url":"Gender","valueCode":"1"}]}]}]}`,
			want: nil,
		},
		{
			name: "identifier elements",
			in:   `{"contained":[{"resourceType":"Patient","identifier":[{"value":"x"}],"name":[{"family":"x"}],"birthDate":"1970-01-01","address":[],"telecom":[],"photo":[],"contact":[]}],"subject":{"identifier":{}}}`,
			want: []string{
				"identifier contained[0].address",
				"identifier contained[0].birthDate",
				"identifier contained[0].contact",
				"identifier contained[0].identifier",
				"identifier contained[0].name",
				"identifier contained[0].photo",
				"identifier contained[0].telecom",
				"identifier subject.identifier",
			},
		},
		{
			name: "key names ignore case",
			in:   `{"BirthDate":"x","NAME":"y"}`,
			want: []string{"identifier BirthDate", "identifier NAME"},
		},
		{
			name: "inner extension names",
			in:   `{"extension":[{"url":"S/x","extension":[{"url":"NHSNumber","valueString":"x"},{"url":"NhsNumber","valueString":"x"},{"url":"PatientName","valueString":"x"},{"url":"DateOfBirth","valueDate":"1970-01-01"},{"url":"Postcode","valueString":"x"}]}]}`,
			want: []string{
				"identifier extension[0].extension[0]",
				"identifier extension[0].extension[1]",
				"identifier extension[0].extension[2]",
				"identifier extension[0].extension[3]",
				"identifier extension[0].extension[4]",
			},
		},
		{
			name: "postcodes",
			in:   `{"address":{"postalCode":"B15 2TH"},"postcode":"n/a"}`,
			want: []string{"identifier address", "identifier address.postalCode", "identifier postcode"},
		},
		{
			name: "nhs numbers in strings anywhere",
			in:   `{"description":"seen 943 476 5919","extension":[{"url":"9434765919","extension":[{"url":"X","valueCode":"4010232137"}]}],"text":{"div":["9434765919"]}}`,
			want: []string{
				"nhs-number description",
				"nhs-number extension[0].extension[0].valueCode",
				"nhs-number extension[0].url",
				"nhs-number text.div[0]",
			},
		},
		{
			name: "nhs number as a key is redacted in the path",
			in:   `{"9434765919":1}`,
			want: []string{`nhs-number "[REDACTED NHS NUMBER]"`},
		},
		{
			name: "odd keys",
			in:   `{"":"9434765919","[x]":"9434765919"}`,
			want: []string{`nhs-number ""`, `nhs-number "[x]"`},
		},
		{
			name: "numbers are not strings",
			in:   `{"n":9434765919}`,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decode(t, tt.in)
			got := Check(in)
			var gotKeys []string
			for _, f := range got {
				gotKeys = append(gotKeys, f.Rule+" "+f.Path)
			}
			if fmt.Sprint(gotKeys) != fmt.Sprint(tt.want) {
				t.Errorf("got %q, want %q", gotKeys, tt.want)
			}
			for _, f := range got {
				for _, secret := range []string{"9434765919", "4010232137", "943 476 5919", "B15 2TH", "1970-01-01"} {
					if strings.Contains(f.String(), secret) {
						t.Errorf("finding %q reveals a value", f)
					}
				}
			}
		})
	}
}

func TestCheckPostcodeMessage(t *testing.T) {
	got := Check(decode(t, `{"postalCode":"b152th"}`))
	if len(got) != 1 || !strings.Contains(got[0].Message, "holds a UK postcode") {
		t.Errorf("got %v, want one finding saying it holds a UK postcode", got)
	}
}

func TestIsUKPostcode(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"B15 2TH", true}, {"b152th", true}, {"SW1A 1AA", true}, {"M1 1AE", true},
		{"CR2 6XH", true}, {"DN55 1PT", true}, {" W1A 0AX ", true},
		{"", false}, {"n/a", false}, {"B15  2TH", false}, {"12345", false},
		{"B15 2T1", false}, {"BBB1 2TH", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := isUKPostcode(tt.in); got != tt.want {
				t.Errorf("isUKPostcode(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedactThenCheckLeavesOnlyCodesAndURLs(t *testing.T) {
	m := decode(t, `{"description":"9434765919","extension":[{"url":"S/x","extension":[{"url":"X","valueString":"943-476-5919"},{"url":"Y","valueCode":"9434765919"}]}]}`)
	RedactResource(m)
	got := Check(m)
	if len(got) != 1 || got[0].Path != "extension[0].extension[1].valueCode" {
		t.Errorf("got %v, want only the valueCode finding", got)
	}
}

func BenchmarkCheck(b *testing.B) {
	m := decode(b, `{"resourceType":"AdverseEvent","description":"Scheduled IV antibiotic dose given about four hours late.","contained":[{"resourceType":"Patient","id":"p1","extension":[{"url":"https://psims-uat.azure-api.net/taxonomy/fhir/StructureDefinition/patient-information-5","extension":[{"url":"PatientSequence","valueInteger":1},{"url":"Gender","valueCode":"1"},{"url":"PhysicalHarm","valueCode":"5"}]}]}],"subject":{"reference":"#p1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if f := Check(m); len(f) != 0 {
			b.Fatalf("got %v, want none", f)
		}
	}
}

// TestCheckIgnoresServerAssignedID: the national service assigns the resource id, and a random
// id can hold ten digits that pass Modulus 11 (seen in the crash test). It is not patient data.
func TestCheckIgnoresServerAssignedID(t *testing.T) {
	res := map[string]any{"resourceType": "AdverseEvent", "id": "ab9434765919cd", "meta": map[string]any{"versionId": "9434765919"}}
	if got := Check(res); len(got) != 0 {
		t.Errorf("got %v, want no findings for the server-assigned id and meta", got)
	}
	res["description"] = "patient 9434765919 fell"
	if got := Check(res); len(got) != 1 {
		t.Errorf("got %v, want one finding for the description", got)
	}
}
