package taxonomy

import (
	"slices"
	"strings"

	"github.com/psgw/psgw/fhir/privacy"
)

// v6 checks follow V6, psgw's assumption of the v6 taxonomy: the v6 client
// psgw learnt from (LFPSE README §4) plus v5's fields and cardinalities for
// everything carried over. Codes are checked by fhir.CheckPayload.

// renamedInV6 lists v5 field names that v6 replaced, by v6 extension id.
// Sending the old name would be silently dropped or refused nationally.
var renamedInV6 = map[string]map[string]string{
	"patient-information-6":   {"Gender": "Gender was replaced in v6 by GenderIdentity and GenderSameAsAtBirth"},
	"adverse-event-process-6": {"Process": "Process was renamed HealthcareProcess in v6"},
}

// eventTypes are the v6 event.coding[0].code values: incident, risk,
// outcome, good care. Only 1 and 4 have been seen in use.
var eventTypes = []string{"1", "2", "3", "4"}

// extensionsV6 checks the extension list of a resource of type typ in a v6
// payload: only extensions V6 knows, on that resource, at most as often as
// allowed. Unlike v5, a missing extension is not reported (see V6).
func (c *checker) extensionsV6(path, typ string, m map[string]any) {
	prefix := structureDefinitionPrefix(6)
	res, _ := c.tax.ResourceForType(typ)
	type use struct {
		ext *Extension
		obj map[string]any
	}
	var uses []use
	counts := make(map[*Extension]int)
	for _, o := range c.outerExtensions(path, m) {
		ext, known := c.tax.Extension(o.url)
		id, isV6 := strings.CutPrefix(o.url, prefix)
		switch {
		case known && ext.Resource == res:
			counts[ext]++
			uses = append(uses, use{ext, o.obj})
		case known:
			c.ps.add(o.path, RuleUnknownExtension, "%s belongs on %s, not %s", ext.ID, ext.Resource.Type, typ)
		case strings.HasPrefix(o.url, structureDefinitionPrefix(5)):
			c.ps.add(o.path, RuleUnknownExtension, "%s is a v5 extension in a v6 payload", quote(o.url))
		case isV6 && strings.HasSuffix(id, "-6") && isBareName(id):
			c.ps.add(o.path, RuleUnknownExtension, "%s is not a v6 extension psgw knows", quote(o.url))
		default:
			c.ps.add(o.path, RuleUnknownExtension, "%s is not a v6 taxonomy extension url (%s<id>-6)", quote(o.url), prefix)
		}
	}
	if res != nil {
		for _, ext := range res.Extensions {
			if n := counts[ext]; n > ext.Max {
				c.ps.add(keyPath(path, "extension["+ext.ID+"]"), RuleCardinality, "%s occurs %d times, at most %d allowed", ext.ID, n, ext.Max)
			}
		}
	}
	seen := make(map[*Extension]int, len(uses))
	var sequences []sequence
	for _, u := range uses {
		// Paths index an extension only when it repeats, as before V6 knew which may.
		p := occurrencePath(keyPath(path, "extension["+u.ext.ID+"]"), seen[u.ext], counts[u.ext], 1)
		seen[u.ext]++
		c.complexV6(p, u.ext, u.obj)
		if u.ext.ID == "patient-information-6" {
			c.sequenceField(p, u.obj)
			sequences = append(sequences, patientSequence(p, u.obj))
		}
	}
	c.patientSequences(sequences)
}

// complexV6 checks one v6 complex extension's inner extensions: only fields
// V6 knows, each at most as often as allowed and with its value[x] key where
// that is known. Missing mandatory fields are fhir.CheckPayload's to report,
// except PatientSequence (sequenceField).
func (c *checker) complexV6(path string, ext *Extension, obj map[string]any) {
	inner := c.complexKeys(path, obj)
	type use struct {
		field *Field
		obj   map[string]any
	}
	var uses []use
	counts := make(map[*Field]int, len(inner))
	// Paths are built only for a problem (see extensionsV5).
	for i, e := range inner {
		iobj, name, ok := wellFormedEntry(e)
		if !ok {
			c.extensionEntry(innerPath(path, i), e) // reports why
			continue
		}
		if privacy.IsIdentifierName(name) { // privacy reports those
			continue
		}
		f, known := ext.Field(name)
		switch {
		case known:
			counts[f]++
			uses = append(uses, use{f, iobj})
		case !isBareName(name):
			c.ps.add(innerPath(path, i), RuleUnknownField, "inner extension url %s is not a bare field name", quote(name))
		case renamedInV6[ext.ID][name] != "":
			c.ps.add(innerPath(path, i), RuleRenamedField, "%s", renamedInV6[ext.ID][name])
		default:
			c.ps.add(innerPath(path, i), RuleUnknownField, "%s is not a field of %s that psgw knows", quote(name), ext.ID)
		}
	}
	for _, f := range ext.Fields {
		// sequenceField reports a repeated PatientSequence.
		if n := counts[f]; n > f.Max && f.Name != "PatientSequence" {
			c.ps.add(joinKey(path, f.Name), RuleCardinality, "%s occurs %d times, at most %d allowed", f.Name, n, f.Max)
		}
	}
	seen := make(map[*Field]int, len(uses))
	for _, u := range uses {
		k := seen[u.field]
		seen[u.field]++
		if _, ok := wellFormedValue(u.obj, u.field.ValueKey); ok {
			continue // innerValue would find nothing
		}
		p := occurrencePath(keyPath(path, u.field.Name), k, counts[u.field], 1)
		c.innerValue(p, u.obj, u.field.ValueKey)
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

// subject checks that a v6 payload names its subject: R4 AdverseEvent.subject is 1..1, so
// LFPSE refuses an event without one. With no patient the gateway sends an empty contained
// Patient, as the public v6 client does (docs/mapping.md). Where it points is checked with
// the other references.
func (c *checker) subject(r map[string]any) {
	if _, ok := r["subject"]; !ok {
		c.ps.add("subject", RuleRequired, "subject is required in v6 (FHIR R4 AdverseEvent.subject is 1..1); with no patient, point it at an empty contained Patient")
	}
}
