package sim

import (
	"bytes"
	"fmt"
	"github.com/psgw/psgw/fhir/privacy"
	"net/http"
	"testing"
)

// set writes v at a path of keys and indexes in a decoded payload.
func set(res map[string]any, v any, path ...any) {
	parent := at(res, path[:len(path)-1]...)
	switch k := path[len(path)-1].(type) {
	case string:
		parent.(map[string]any)[k] = v
	case int:
		parent.([]any)[k] = v
	}
}

func del(res map[string]any, path ...any) {
	delete(at(res, path[:len(path)-1]...).(map[string]any), path[len(path)-1].(string))
}

const (
	validNHS   = "9434765919" // the NHS's own example number; passes Modulus 11
	invalidNHS = "9434765918"
)

func TestStructuralChecks(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name    string
		version string
		edit    func(map[string]any)
		path    string
		rule    string
	}{
		{"no meta", "5", func(r map[string]any) { del(r, "meta") }, "AdverseEvent.meta", "profile-required"},
		{"no profile", "5", func(r map[string]any) { set(r, []any{}, "meta", "profile") }, "AdverseEvent.meta.profile", "profile-required"},
		{"profile not array", "5", func(r map[string]any) { set(r, ProfileURL(5), "meta", "profile") }, "AdverseEvent.meta.profile", "profile-required"},
		{"unserved version", "5", func(r map[string]any) { set(r, ProfileURL(4), "meta", "profile", 0) }, "AdverseEvent.meta.profile", "profile-version"},
		{"version not a number", "5", func(r map[string]any) {
			set(r, canonicalBases[5]+"/patient-safety-adverse-event-five", "meta", "profile", 0)
		}, "AdverseEvent.meta.profile", "profile-version"},
		{"v5 on v6 host", "5", func(r map[string]any) {
			set(r, canonicalBases[6]+"/patient-safety-adverse-event-5", "meta", "profile", 0)
		}, "AdverseEvent.meta.profile", "profile-canonical"},
		{"v6 on v5 host", "6", func(r map[string]any) {
			set(r, canonicalBases[5]+"/patient-safety-adverse-event-6", "meta", "profile", 0)
		}, "AdverseEvent.meta.profile", "profile-canonical"},
		{"two profiles", "5", func(r map[string]any) {
			set(r, []any{ProfileURL(5), ProfileURL(6)}, "meta", "profile")
		}, "AdverseEvent.meta.profile", "profile-ambiguous"},
		{"R4 element in v5", "5", func(r map[string]any) { r["actuality"] = "actual" }, "AdverseEvent.actuality", "unknown-element"},
		{"STU3 element in v6", "6", func(r map[string]any) { r["reaction"] = []any{} }, "AdverseEvent.reaction", "unknown-element"},
		{"typo", "5", func(r map[string]any) { r["descripton"] = "x" }, "AdverseEvent.descripton", "unknown-element"},
		{"v6 without actuality", "6", func(r map[string]any) { del(r, "actuality") }, "AdverseEvent.actuality", "actuality-required"},
		{"v6 without subject", "6", func(r map[string]any) { del(r, "subject") }, "AdverseEvent.subject", "subject-required"},
		{"v6 bad actuality", "6", func(r map[string]any) { r["actuality"] = "maybe" }, "AdverseEvent.actuality", "actuality-value"},
		{"duplicate contained id", "5", func(r map[string]any) { set(r, "patient1", "contained", 1, "id") },
			"AdverseEvent.contained[1].id", "contained-id-unique"},
		{"contained without id", "5", func(r map[string]any) { del(r, "contained", 3, "id") },
			"AdverseEvent.contained[3].id", "contained-id-required"},
		{"contained wrong type", "5", func(r map[string]any) { set(r, "Organization", "contained", 2, "resourceType") },
			"AdverseEvent.contained[2].resourceType", "contained-resource-type"},
		{"contained not array", "5", func(r map[string]any) { r["contained"] = map[string]any{} },
			"AdverseEvent.contained", "contained-type"},
		{"nested contained", "5", func(r map[string]any) { set(r, []any{}, "contained", 0, "contained") },
			"AdverseEvent.contained[0].contained", "dom-2"},
		{"unresolved subject", "5", func(r map[string]any) { set(r, "#nobody", "subject", "reference") },
			"AdverseEvent.subject.reference", "reference-resolves"},
		{"unresolved recorder", "5", func(r map[string]any) { set(r, "#nobody", "recorder", "reference") },
			"AdverseEvent.recorder.reference", "reference-resolves"},
		{"unresolved location", "5", func(r map[string]any) { set(r, "#nowhere", "location", "reference") },
			"AdverseEvent.location.reference", "reference-resolves"},
		{"unresolved instance", "5", func(r map[string]any) { set(r, "#nothing", "suspectEntity", 0, "instance", "reference") },
			"AdverseEvent.suspectEntity[0].instance.reference", "reference-resolves"},
		{"external reference", "5", func(r map[string]any) { set(r, "Patient/123", "subject", "reference") },
			"AdverseEvent.subject.reference", "reference-local"},
		{"subject points at practitioner", "5", func(r map[string]any) { set(r, "#practitioner1", "subject", "reference") },
			"AdverseEvent.subject.reference", "reference-target-type"},
		{"instance points at location", "5", func(r map[string]any) {
			set(r, "#location1", "suspectEntity", 0, "instance", "reference")
		}, "AdverseEvent.suspectEntity[0].instance.reference", "reference-target-type"},
		{"suspectEntity without instance", "5", func(r map[string]any) { del(r, "suspectEntity", 0, "instance") },
			"AdverseEvent.suspectEntity[0].instance", "suspect-entity-instance"},
		{"unreferenced contained", "5", func(r map[string]any) { del(r, "suspectEntity") },
			"AdverseEvent.contained[3]", "dom-3"},
		{"extension not array", "5", func(r map[string]any) { set(r, map[string]any{}, "contained", 0, "extension") },
			"AdverseEvent.contained[0].extension", "extension-shape"},
		{"extension without url", "5", func(r map[string]any) { del(r, "extension", 0, "url") },
			"AdverseEvent.extension[0].url", "extension-url"},
		{"modifier extension", "5", func(r map[string]any) { r["modifierExtension"] = []any{} },
			"AdverseEvent.modifierExtension", "modifier-extension"},
		{"identifier on patient", "5", func(r map[string]any) {
			set(r, []any{map[string]any{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "SECRET-ID"}}, "contained", 0, "identifier")
		}, "AdverseEvent.contained[0].identifier", "no-patient-identifiers"},
		{"name", "5", func(r map[string]any) { set(r, []any{map[string]any{"family": "SECRET-NAME"}}, "contained", 1, "name") },
			"AdverseEvent.contained[1].name", "no-patient-identifiers"},
		{"birthDate", "5", func(r map[string]any) { set(r, "1975-01-01", "contained", 0, "birthDate") },
			"AdverseEvent.contained[0].birthDate", "no-patient-identifiers"},
		{"address", "5", func(r map[string]any) { set(r, []any{}, "contained", 2, "address") },
			"AdverseEvent.contained[2].address", "no-patient-identifiers"},
		{"telecom", "6", func(r map[string]any) { r["telecom"] = []any{} }, "AdverseEvent.telecom", "no-patient-identifiers"},
		{"NHS number in description", "5", func(r map[string]any) { r["description"] = "Patient " + validNHS + " fell." },
			"AdverseEvent.description", "no-nhs-number"},
		{"spaced NHS number", "5", func(r map[string]any) { r["description"] = "NHS no 943 476 5919." },
			"AdverseEvent.description", "no-nhs-number"},
		{"hyphenated NHS number", "6", func(r map[string]any) { r["description"] = "943-476-5919" },
			"AdverseEvent.description", "no-nhs-number"},
		{"NHS number in an extension", "5", func(r map[string]any) {
			set(r, "given to "+validNHS, "extension", 1, "extension", 1, "valueString")
		}, "AdverseEvent.extension[1].extension[1].valueString", "no-nhs-number"},
		{"NHS number as a JSON number", "5", func(r map[string]any) {
			set(r, float64(9434765919), "contained", 0, "extension", 0, "extension", 1, "valueInteger")
		}, "AdverseEvent.contained[0].extension[0].extension[1].valueInteger", "no-nhs-number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := payload(t, c.version)
			c.edit(res)
			r := h.post(res)
			wantOutcome(t, r, http.StatusUnprocessableEntity, c.path, c.rule)
			// Issues name the place, never the value: it may be patient data.
			for _, secret := range []string{validNHS, "943 476 5919", "943-476-5919", "1975-01-01", "SECRET"} {
				if bytes.Contains(r.body, []byte(secret)) {
					t.Errorf("the outcome echoes %q: %s", secret, r.body)
				}
			}
		})
	}
	if n := len(h.sim.Events()); n != 0 {
		t.Errorf("refused payloads were stored: %d", n)
	}
}

func TestNotNHSNumbers(t *testing.T) {
	h := newHarness(t, nil)
	for _, d := range []string{
		"Patient " + invalidNHS + " fell.", // fails Modulus 11
		"ref 19434765919",                  // eleven digits
		"943 476 59190",                    // last group too long
		"ward 943, bed 476, 5919",          // not 3-3-4
		"dose 2025-03-14",
	} {
		res := payload(t, "5")
		res["description"] = d
		if r := h.post(res); r.status != http.StatusCreated {
			t.Errorf("description %q: got %d, want 201; %s", d, r.status, r.body)
		}
	}
}

func TestValidNHSNumber(t *testing.T) {
	cases := map[string]bool{
		validNHS:      true,
		invalidNHS:    false, // wrong check digit
		"1000000001":  true,  // sum 10 → 11 − 10 = 1
		"5000000005":  true,  // sum 50 → 50 mod 11 = 6 → 5
		"2000000000":  false, // sum 20 → check 2, not 0
		"0000000000":  true,  // sum 0 → 11 → 0; the simulator does not know NHS number ranges
		"123456789":   false, // too short
		"12345678901": false,
	}
	// 1000000010: sum 10 + 1·2 = 12 → 12 mod 11 = 1 → check 10, which no number may have.
	for c := '0'; c <= '9'; c++ {
		cases["100000001"+string(c)] = false
	}
	for in, want := range cases {
		if got := privacy.ValidNHSNumber(in); got != want {
			t.Errorf("validNHSNumber(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestContainsNHSNumber(t *testing.T) {
	cases := map[string]bool{
		validNHS:                             true,
		"x" + validNHS + "y":                 true,
		"NHS:943 476 5919.":                  true,
		"943-476-5919":                       true,
		"943 476-5919":                       true,
		invalidNHS:                           false,
		"1" + validNHS:                       false,
		validNHS + "1":                       false,
		"943 476 59191":                      false,
		"1943 476 5919":                      false,
		"943  476 5919":                      true, // any run of separators joins groups (issue 15)
		"943 a 476 5919":                     false,
		"":                                   false,
		"short 943":                          false,
		"two " + invalidNHS + " " + validNHS: true,
	}
	for in, want := range cases {
		if got := privacy.ContainsNHSNumber(in); got != want {
			t.Errorf("containsNHSNumber(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestIssuesAreCapped(t *testing.T) {
	h := newHarness(t, nil)
	res := payload(t, "5")
	for i := range 300 {
		res["contained"] = append(res["contained"].([]any), map[string]any{"resourceType": "Patient", "id": fmt.Sprint("extra", i)})
	}
	issues := wantOutcome(t, h.post(res), http.StatusUnprocessableEntity, "AdverseEvent.contained[4]", "dom-3")
	if len(issues) != maxIssues+1 || at(issues[maxIssues], "details", "coding", 0, "code") != "too-many-issues" {
		t.Errorf("issues: got %d, want %d ending in too-many-issues", len(issues), maxIssues+1)
	}
}
