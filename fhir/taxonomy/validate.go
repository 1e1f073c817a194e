package taxonomy

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir/privacy"
)

// MaxDescription is the most characters (not bytes) AdverseEvent.description
// may hold, as for the ingest API's description (docs/api.md, "Ingest").
const MaxDescription = 32000

// baseElements are the AdverseEvent elements psgw may send. Anything else
// is refused: LFPSE carries its content in extensions, and an element
// nobody expects is most likely a mapping mistake or leaked data.
var baseElements = []string{
	"resourceType", "id", "meta", "contained", "extension", "subject", "date",
	"location", "recorder", "description", "suspectEntity", "category", "type",
	"event", "actuality", "text",
}

// Validate checks a decoded AdverseEvent, as encoding/json decodes it into
// map[string]any, against taxonomy version 5 or 6, and returns every
// problem found, sorted by path (see Problem), or nil if there are none.
// It never panics and never modifies resource. Integers may also be Go ints
// or json.Number; other Go types (typed slices, structs) must be
// round-tripped through encoding/json first.
//
// v5 is checked fully against the embedded taxonomy: known extensions on
// the right resource, cardinality of extensions and fields, value[x] keys,
// types and formats, codes in their value sets and the ODS list. v6, whose
// taxonomy we do not hold, is checked against what psgw assumes of it (V6):
// its profile, actuality and event type; only the extensions psgw knows, on
// the right resource and at most as often as v5 allows; only the inner
// fields psgw knows, at most as often as v5 allows, with v5's value[x] key;
// and the v5 field names v6 replaced. Codes and mandatory inner fields of v6
// are not checked here (fhir.CheckPayload does, assuming v5's). Both
// versions check contained resources
// and references, PatientSequence numbering, date, description, unknown
// base elements, and patient identifiers (package privacy).
//
// The Rule* constants list the rule slugs.
func Validate(version int, resource map[string]any) []Problem {
	if version != 5 && version != 6 {
		return []Problem{{
			Rule:    RuleVersion,
			Message: fmt.Sprintf("taxonomy version %d is not supported, want 5 or 6", version),
		}}
	}
	c := &checker{version: version, tax: V5()}
	if version == 6 {
		c.tax = V6()
	}
	c.adverseEvent(resource)
	for _, f := range privacy.Check(resource) {
		c.ps = append(c.ps, Problem(f))
	}
	return c.ps.sorted()
}

// checker walks one payload and collects its problems.
type checker struct {
	version int
	tax     *Taxonomy // V5, or V6 (psgw's assumption)
	ps      problems
}

func (c *checker) adverseEvent(r map[string]any) {
	switch rt, ok := r["resourceType"]; {
	case !ok:
		c.ps.add("resourceType", RuleRequired, "resourceType is required")
	case rt != "AdverseEvent":
		c.ps.add("resourceType", RuleResourceType, "resourceType is not \"AdverseEvent\"")
	}
	for k := range r {
		if !slices.Contains(baseElements, k) && !privacy.IsIdentifierName(k) {
			c.ps.add(keyPath("", k), RuleUnknownElement, "%s is not an element LFPSE payloads carry", quote(k))
		}
	}
	c.profile(r)
	if id, ok := r["id"]; ok {
		if s, isString := id.(string); !isString || !isFHIRID(s) {
			c.ps.add("id", RuleValueType, "id is not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
		}
	}
	c.date(r)
	c.description(r)
	if c.version == 5 {
		ae, _ := c.tax.ResourceForType("AdverseEvent")
		c.extensionsV5("", ae, r)
	} else {
		c.extensionsV6("", "AdverseEvent", r)
		c.actuality(r)
		c.eventType(r)
		c.subject(r)
	}
	byID := c.containedResources(r)
	c.references(r, byID)
}

func (c *checker) profile(r map[string]any) {
	want := ProfileURL(c.version)
	meta, ok := c.object("meta", r, "meta")
	if !ok {
		c.ps.add("meta.profile", RuleProfile, "meta.profile must contain %s", want)
		return
	}
	list, _ := c.array("meta.profile", meta, "profile")
	found := false
	for i, p := range list {
		s, isString := p.(string)
		switch {
		case !isString:
			c.ps.add(joinIndex("meta.profile", i), RuleStructure, "profile is not a string")
		case s == want:
			found = true
		case s == ProfileURL(otherVersion(c.version)):
			c.ps.add(joinIndex("meta.profile", i), RuleProfile, "a v%d profile in a v%d payload", otherVersion(c.version), c.version)
		}
	}
	if !found {
		c.ps.add("meta.profile", RuleProfile, "meta.profile must contain %s", want)
	}
}

func otherVersion(v int) int { return 11 - v } // 5 <-> 6

func (c *checker) date(r map[string]any) {
	v, ok := r["date"]
	if !ok {
		return
	}
	if s, isString := v.(string); !isString || !isDateOrDateTime(s) {
		c.ps.add("date", RuleDate, "date is neither YYYY-MM-DD nor an RFC 3339 date-time")
	}
}

func (c *checker) description(r map[string]any) {
	v, ok := r["description"]
	if !ok {
		return
	}
	s, isString := v.(string)
	switch {
	case !isString:
		c.ps.add("description", RuleStructure, "description is not a string")
	case isBlank(s):
		c.ps.add("description", RuleDescription, "description is empty")
	case len(s) > MaxDescription && utf8.RuneCountInString(s) > MaxDescription:
		c.ps.add("description", RuleDescription, "description has %d characters, at most %d allowed",
			utf8.RuneCountInString(s), MaxDescription)
	}
}

// object returns m[key] as a JSON object, reporting a structure problem if
// it is present but not one.
func (c *checker) object(path string, m map[string]any, key string) (map[string]any, bool) {
	v, ok := m[key]
	if !ok {
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		c.ps.add(path, RuleStructure, "%s is not a JSON object", key)
	}
	return obj, ok
}

// array returns m[key] as a non-empty JSON array, reporting a structure
// problem if it is present but not one (FHIR JSON forbids empty arrays).
func (c *checker) array(path string, m map[string]any, key string) ([]any, bool) {
	v, ok := m[key]
	if !ok {
		return nil, false
	}
	list, ok := v.([]any)
	switch {
	case !ok:
		c.ps.add(path, RuleStructure, "%s is not a JSON array", key)
	case len(list) == 0:
		c.ps.add(path, RuleStructure, "%s is an empty array, which FHIR JSON does not allow", key)
		ok = false
	}
	return list, ok
}

// keyPath appends a key taken from the payload to a path, redacting any NHS
// number in it so that paths are as safe to log as messages. A key that is
// empty or starts with '[' is quoted, as package privacy does, so it cannot
// pass for an array index.
func keyPath(path, key string) string {
	key, _ = privacy.RedactText(key)
	if key == "" || key[0] == '[' {
		key = strconv.Quote(key)
	}
	return joinKey(path, key)
}
