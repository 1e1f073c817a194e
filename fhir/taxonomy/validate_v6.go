package taxonomy

import (
	"slices"
	"strings"

	"github.com/psgw/psgw/fhir/privacy"
)

// v6 checks are structural: the v6 taxonomy has not been published in a
// form we hold, so names, cardinality and codes cannot be checked. What is
// checked is known from a working v6 client (LFPSE README §4).

// renamedInV6 lists v5 field names that v6 replaced, by v6 extension id.
// Sending the old name would be silently dropped or refused nationally.
var renamedInV6 = map[string]map[string]string{
	"patient-information-6":   {"Gender": "Gender was replaced in v6 by GenderIdentity and GenderSameAsAtBirth"},
	"adverse-event-process-6": {"Process": "Process was renamed HealthcareProcess in v6"},
}

// eventTypes are the v6 event.coding[0].code values: incident, risk,
// outcome, good care. Only 1 and 4 have been seen in use.
var eventTypes = []string{"1", "2", "3", "4"}

// extensionsV6 checks a resource's extension list in a v6 payload.
func (c *checker) extensionsV6(path string, m map[string]any) {
	prefix := structureDefinitionPrefix(6)
	type use struct {
		id  string
		obj map[string]any
	}
	var uses []use
	counts := make(map[string]int)
	for _, o := range c.outerExtensions(path, m) {
		id, ok := strings.CutPrefix(o.url, prefix)
		switch {
		case ok && strings.HasSuffix(id, "-6") && isBareName(id):
			counts[id]++
			uses = append(uses, use{id, o.obj})
		case strings.HasPrefix(o.url, structureDefinitionPrefix(5)):
			c.ps.add(o.path, RuleUnknownExtension, "%s is a v5 extension in a v6 payload", quote(o.url))
		default:
			c.ps.add(o.path, RuleUnknownExtension, "%s is not a v6 taxonomy extension url (%s<id>-6)", quote(o.url), prefix)
		}
	}
	seen := make(map[string]int, len(uses))
	var sequences []sequence
	for _, u := range uses {
		p := occurrencePath(keyPath(path, "extension["+u.id+"]"), seen[u.id], counts[u.id], 1)
		seen[u.id]++
		c.complexV6(p, u.id, u.obj)
		if u.id == "patient-information-6" {
			c.sequenceField(p, u.obj)
			sequences = append(sequences, patientSequence(p, u.obj))
		}
	}
	c.patientSequences(sequences)
}

// complexV6 checks one v6 complex extension's inner extensions.
func (c *checker) complexV6(path, id string, obj map[string]any) {
	inner := c.complexKeys(path, obj)
	type use struct {
		name string
		obj  map[string]any
	}
	var uses []use
	counts := make(map[string]int, len(inner))
	listPath := joinKey(path, "extension")
	for i, e := range inner {
		p := joinIndex(listPath, i)
		iobj, name, ok := c.extensionEntry(p, e)
		switch {
		case !ok, privacy.IsIdentifierName(name): // privacy reports those
		case !isBareName(name):
			c.ps.add(p, RuleUnknownField, "inner extension url %s is not a bare field name", quote(name))
		case renamedInV6[id][name] != "":
			c.ps.add(p, RuleRenamedField, "%s", renamedInV6[id][name])
		default:
			counts[name]++
			uses = append(uses, use{name, iobj})
		}
	}
	seen := make(map[string]int, len(uses))
	for _, u := range uses {
		p := occurrencePath(keyPath(path, u.name), seen[u.name], counts[u.name], 1)
		seen[u.name]++
		want := ""
		if u.name == "PatientSequence" {
			want = "valueInteger"
		}
		c.innerValue(p, u.obj, want)
	}
}

// isBareName reports whether s can be an inner extension name or an
// extension id: letters, digits, '-' and '_', starting with a letter. Urls
// and anything with spaces or punctuation fail.
func isBareName(s string) bool {
	if s == "" || len(s) > 128 || !isASCIILetter(s[0]) {
		return false
	}
	for i := range len(s) {
		ch := s[i]
		if !isASCIILetter(ch) && (ch < '0' || ch > '9') && ch != '-' && ch != '_' {
			return false
		}
	}
	return true
}

func isASCIILetter(ch byte) bool { return 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' }

// actuality checks the R4 element v6 payloads carry: always "actual", since
// LFPSE records events, potential ones included, as reports of fact.
func (c *checker) actuality(r map[string]any) {
	v, ok := r["actuality"]
	switch {
	case !ok:
		c.ps.add("actuality", RuleRequired, "actuality is required in v6 and must be \"actual\"")
	case v != "actual":
		c.ps.add("actuality", RuleValueSet, "actuality must be \"actual\"")
	}
}

// eventType checks event.coding[0].code, the v6 event type. LFPSE codes
// carry no system.
func (c *checker) eventType(r map[string]any) {
	if _, ok := r["event"]; !ok {
		c.ps.add("event", RuleRequired, "event (the event type) is required in v6")
		return
	}
	ev, ok := c.object("event", r, "event")
	if !ok {
		return
	}
	coding, ok := c.array("event.coding", ev, "coding")
	if !ok {
		if _, present := ev["coding"]; !present {
			c.ps.add("event.coding", RuleRequired, "event.coding is required")
		}
		return
	}
	first, ok := coding[0].(map[string]any)
	if !ok {
		c.ps.add("event.coding[0]", RuleStructure, "coding is not a JSON object")
		return
	}
	if _, ok := first["system"]; ok {
		c.ps.add("event.coding[0].system", RuleUnknownElement, "LFPSE event type codes carry no system")
	}
	code, _ := first["code"].(string)
	if !slices.Contains(eventTypes, code) {
		c.ps.add("event.coding[0].code", RuleValueSet,
			"event type must be 1 (incident), 2 (risk), 3 (outcome) or 4 (good care)")
	}
}
