package taxonomy

import (
	"strings"

	"github.com/psgw/psgw/fhir/privacy"
)

// extensionsV5 checks a resource's extension list against its v5 profile:
// every url allowed there, each extension within its cardinality, and each
// extension's fields.
func (c *checker) extensionsV5(path string, res *Resource, m map[string]any) {
	type use struct {
		ext *Extension
		obj map[string]any
	}
	var uses []use
	counts := make(map[*Extension]int, len(res.Extensions))
	for _, o := range c.outerExtensions(path, m) {
		ext, ok := c.tax.Extension(o.url)
		switch {
		case ok && ext.Resource == res:
			counts[ext]++
			uses = append(uses, use{ext, o.obj})
		case ok:
			c.ps.add(o.path, RuleUnknownExtension, "%s belongs on %s, not %s", ext.ID, ext.Resource.Type, res.Type)
		case strings.HasPrefix(o.url, structureDefinitionPrefix(6)):
			c.ps.add(o.path, RuleUnknownExtension, "%s is a v6 extension in a v5 payload", quote(o.url))
		default:
			c.ps.add(o.path, RuleUnknownExtension, "%s is not a v5 extension of %s", quote(o.url), res.Type)
		}
	}
	// Paths are built only for a problem: most checks pass, and building every path up front
	// was a large share of validation's time and allocations.
	for _, ext := range res.Extensions {
		switch n := counts[ext]; {
		case n < ext.Min:
			c.ps.add(joinKey(path, "extension["+ext.ID+"]"), RuleRequired, "%s is required on %s", ext.ID, res.Type)
		case n > ext.Max:
			c.ps.add(joinKey(path, "extension["+ext.ID+"]"), RuleCardinality, "%s occurs %d times, at most %d allowed", ext.ID, n, ext.Max)
		}
	}
	seen := make(map[*Extension]int, len(uses))
	var sequences []sequence
	for _, u := range uses {
		p := occurrencePath(joinKey(path, "extension["+u.ext.ID+"]"), seen[u.ext], counts[u.ext], u.ext.Max)
		seen[u.ext]++
		c.complexV5(p, u.ext, u.obj)
		if u.ext.ID == "patient-information-5" {
			sequences = append(sequences, patientSequence(p, u.obj))
		}
	}
	c.patientSequences(sequences)
}

// complexV5 checks one v5 complex extension's inner extensions.
func (c *checker) complexV5(path string, ext *Extension, obj map[string]any) {
	type use struct {
		field *Field
		obj   map[string]any
	}
	inner := c.complexKeys(path, obj)
	var uses []use
	counts := make(map[*Field]int, len(inner))
	// Paths are built only for a problem (see extensionsV5).
	for i, e := range inner {
		iobj, name, ok := wellFormedEntry(e)
		if !ok {
			c.extensionEntry(innerPath(path, i), e) // reports why
			continue
		}
		f, ok := ext.Field(name)
		if !ok {
			if !privacy.IsIdentifierName(name) { // privacy reports those
				c.ps.add(innerPath(path, i), RuleUnknownField, "%s is not a field of %s", quote(name), ext.ID)
			}
			continue
		}
		counts[f]++
		uses = append(uses, use{f, iobj})
	}
	if inner != nil {
		for _, f := range ext.Fields {
			switch n := counts[f]; {
			case n < f.Min:
				c.ps.add(joinKey(path, f.Name), RuleRequired, "%s is required in %s", f.Name, ext.ID)
			case n > f.Max:
				c.ps.add(joinKey(path, f.Name), RuleCardinality, "%s occurs %d times, at most %d allowed", f.Name, n, f.Max)
			}
		}
	}
	seen := make(map[*Field]int, len(uses))
	for _, u := range uses {
		k := seen[u.field]
		seen[u.field]++
		if v, ok := wellFormedValue(u.obj, u.field.ValueKey); ok && (u.field.ValueSet == "" || c.hasCode(u.field, v.(string))) {
			continue // innerValue and code would find nothing
		}
		p := occurrencePath(joinKey(path, u.field.Name), k, counts[u.field], u.field.Max)
		_, v, ok := c.innerValue(p, u.obj, u.field.ValueKey)
		if ok && u.field.ValueSet != "" {
			c.code(p, u.field, v.(string)) // checkValue made sure it is a string
		}
	}
}

// hasCode reports whether code is in its field's value set; code reports it when not.
func (c *checker) hasCode(f *Field, code string) bool {
	vs, _ := c.tax.ValueSet(f.ValueSet)
	return vs.Has(code)
}

// code checks a code against its field's value set, or the ODS list.
func (c *checker) code(path string, f *Field, code string) {
	vs, _ := c.tax.ValueSet(f.ValueSet)
	switch {
	case vs.Has(code):
	case vs == c.tax.ods:
		c.ps.add(path, RuleODSCode, "%s is not an ODS organisation code in the taxonomy's list", privacy.QuoteCode(code))
	default:
		c.ps.add(path, RuleValueSet, "code %s is not in value set %s", privacy.QuoteCode(code), vs.ID)
	}
}
