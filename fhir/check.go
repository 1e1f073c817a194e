package fhir

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/fhir/taxonomy"
)

// CheckPayload checks a decoded AdverseEvent (as encoding/json decodes it into
// map[string]any) as strictly as the gateway does before the outbox, and returns every
// problem. It is taxonomy.Validate plus the rules psgw knows that the taxonomy data does
// not carry:
//
//   - the event type: present, one of 1 to 4, in type (v5) or event (v6), and the question
//     set that defines a risk (risk details) or good care (what went well) present;
//   - in v6, the codes and mandatory inner fields of every extension of taxonomy.V6, checked
//     against the v5 taxonomy: psgw assumes them unchanged until the v6 taxonomy is
//     published (docs/mapping.md). taxonomy.Validate has refused extensions and inner
//     fields V6 does not have, and any that repeat more often than v5 allows.
//
// The simulator should use it (through an adapter to sim.Issue), so that a payload the
// gateway would quarantine is refused there too. It never panics and never modifies doc.
func CheckPayload(version int, doc map[string]any) []taxonomy.Problem {
	ps := taxonomy.Validate(version, doc)
	if version != 5 && version != 6 {
		return ps
	}
	ps = append(ps, eventTypeProblems(version, doc)...)
	if version == 6 {
		extra := v6CodeProblems(doc)
		sort.Slice(extra, func(i, j int) bool {
			if extra[i].Path != extra[j].Path {
				return extra[i].Path < extra[j].Path
			}
			return extra[i].Message < extra[j].Message
		})
		ps = append(ps, extra...)
	}
	return ps
}

// eventTypeProblems checks the event type. Which question sets each type must carry (risk
// details for a risk, what went well for good care) is not in the taxonomy data, so their
// absence is not a problem here: the national service is the authority on it, and a refusal
// there leaves the incident rejected with its reason (docs/mapping.md).
func eventTypeProblems(version int, doc map[string]any) []taxonomy.Problem {
	if version != 5 {
		return nil // taxonomy.Validate checks v6's event itself
	}
	code, ok := firstCode(doc["type"])
	switch {
	case doc["type"] == nil:
		return []taxonomy.Problem{{Path: "type", Rule: taxonomy.RuleRequired, Message: "type (the event type) is required"}}
	case !ok || code < "1" || code > "4" || len(code) != 1:
		return []taxonomy.Problem{{Path: "type.coding[0].code", Rule: taxonomy.RuleValueSet,
			Message: "event type must be 1 (incident), 2 (risk), 3 (outcome) or 4 (good care)"}}
	}
	return nil
}

func firstCode(v any) (string, bool) {
	m, _ := v.(map[string]any)
	coding := asList(m["coding"])
	if len(coding) == 0 {
		return "", false
	}
	c, _ := coding[0].(map[string]any)
	s, ok := c["code"].(string)
	return s, ok
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// v6Field is what psgw assumes about a v6 inner field: its v5 counterpart.
type v6Field struct {
	field *taxonomy.Field
	vs    *taxonomy.ValueSet // nil for uncoded fields
}

// v6Fields indexes, by v6 extension url and inner name, the fields of taxonomy.V6, psgw's
// assumption of v6: v5's fields under their v6 names, with v5's cardinality and value sets,
// plus the fields a v6 client shows. Fields whose codes are unknown (GenderIdentity,
// GenderSameAsAtBirth, the dm+d ids) have no value set, so only their presence counts.
// taxonomy.Validate has already refused extensions and fields not in V6.
var v6Fields = sync.OnceValue(func() map[string]map[string]v6Field {
	v5, v6 := taxonomy.V5(), taxonomy.V6()
	out := map[string]map[string]v6Field{}
	for _, r := range v6.Resources() {
		for _, ext := range r.Extensions {
			fields := make(map[string]v6Field, len(ext.Fields))
			for _, f := range ext.Fields {
				vf := v6Field{field: f}
				if f.ValueSet != "" {
					vf.vs, _ = v5.ValueSet(f.ValueSet)
				}
				fields[f.Name] = vf
			}
			out[ext.URL] = fields
		}
	}
	return out
})

// v6CodeProblems checks the codes and mandatory fields of v6 extensions, on the AdverseEvent
// and on contained resources.
func v6CodeProblems(doc map[string]any) []taxonomy.Problem {
	var ps []taxonomy.Problem
	ps = v6Extensions(ps, "", doc)
	for i, c := range asList(doc["contained"]) {
		if m, _ := c.(map[string]any); m != nil {
			rt, _ := m["resourceType"].(string)
			ps = v6Extensions(ps, "contained["+strconv.Itoa(i)+"]("+rt+")", m)
		}
	}
	return ps
}

func v6Extensions(ps []taxonomy.Problem, path string, m map[string]any) []taxonomy.Problem {
	tax := taxonomy.V5()
	for i, e := range asList(m["extension"]) {
		outer, _ := e.(map[string]any)
		url, _ := outer["url"].(string)
		fields, ok := v6Fields()[url]
		if !ok {
			continue // taxonomy.Validate reports an extension v6 does not have
		}
		p := joinPath(path, "extension["+strconv.Itoa(i)+"]")
		seen := map[string]bool{}
		for j, ie := range asList(outer["extension"]) {
			inner, _ := ie.(map[string]any)
			name, _ := inner["url"].(string)
			f, ok := fields[name]
			if !ok {
				continue // taxonomy.Validate reports a field v6 does not have
			}
			seen[name] = true
			if f.vs == nil {
				continue
			}
			code, isString := inner["valueCode"].(string)
			if !isString {
				continue // taxonomy.Validate reports a wrong value[x]
			}
			if f.vs.ID == "ods-codes-5" {
				if !tax.IsODSCode(code) {
					ps = append(ps, taxonomy.Problem{Path: p + ".extension[" + strconv.Itoa(j) + "]", Rule: taxonomy.RuleODSCode,
						Message: privacy.QuoteCode(code) + " is not an ODS organisation code in the taxonomy's list"})
				}
				continue
			}
			if !f.vs.Has(code) {
				ps = append(ps, taxonomy.Problem{Path: p + ".extension[" + strconv.Itoa(j) + "]", Rule: taxonomy.RuleValueSet,
					Message: "code " + privacy.QuoteCode(code) + " is not in value set " + strings.TrimSuffix(f.vs.ID, "-5") + " (v5 codes assumed for v6)"})
			}
		}
		for name, f := range fields {
			// taxonomy.Validate already checks PatientSequence in v6.
			if f.field.Min > 0 && !seen[name] && name != "PatientSequence" {
				ps = append(ps, taxonomy.Problem{Path: p + "." + name, Rule: taxonomy.RuleRequired,
					Message: name + " is required in " + strings.TrimPrefix(url, taxonomy.V6CanonicalBase+"/StructureDefinition/")})
			}
		}
	}
	return ps
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
