package fhir

import (
	"sort"
	"strconv"
	"strings"
)

// SourceCodeMaps is the configured code maps of every source: source → canonical field
// (FieldKeys) → taxonomy version ("5", "6", or "*" for both) → local value → LFPSE code. It
// is the shape of config's sources.NAME.code_maps.
type SourceCodeMaps map[string]map[string]map[string]map[string]string

type codeKey struct{ source, field, value string }

// codeTable is a CodeMapper answering from one flat table, built once.
type codeTable struct {
	exact map[codeKey]string
	// folded holds the same entries under lower-cased values: local systems are not
	// consistent about case, and no LFPSE answer depends on it.
	folded map[codeKey]string
	// fields holds the (source, field) pairs that have entries for the version.
	fields map[codeKey]bool
}

// NewCodeMaps flattens maps for one taxonomy version into a CodeMapper. Entries for the
// version win over "*" entries. The result is read-only and safe for concurrent use.
func NewCodeMaps(version int, maps SourceCodeMaps) CodeMapper {
	t := codeTable{exact: map[codeKey]string{}, folded: map[codeKey]string{}, fields: map[codeKey]bool{}}
	v := strconv.Itoa(version)
	for source, fields := range maps {
		for field, versions := range fields {
			for _, ver := range []string{"*", v} { // the version's own entries last, so they win
				for value, code := range versions[ver] {
					value = strings.TrimSpace(value)
					t.exact[codeKey{source, field, value}] = code
					t.folded[codeKey{source, field, strings.ToLower(value)}] = code
					t.fields[codeKey{source: source, field: field}] = true
				}
			}
		}
	}
	return t
}

// Code implements CodeMapper.
func (t codeTable) Code(source, field, value string) (string, bool) {
	if c, ok := t.exact[codeKey{source, field, value}]; ok {
		return c, true
	}
	c, ok := t.folded[codeKey{source, field, strings.ToLower(value)}]
	return c, ok
}

// MapsField reports whether source has code-map entries for field in the table's version.
func (t codeTable) MapsField(source, field string) bool {
	return t.fields[codeKey{source: source, field: field}]
}

// CheckCodeMaps reports code-map entries that cannot work for a taxonomy version: unknown
// fields, unknown versions, and (for v5, and for v6 where psgw assumes v5's codes) target
// codes outside the field's value set. Run it at start-up so a typo is found before the
// first incident is quarantined by it.
func CheckCodeMaps(maps SourceCodeMaps) []Problem {
	var ps []Problem
	for source, fields := range maps {
		for field, versions := range fields {
			path := "sources." + source + ".code_maps." + field
			s, known := specs()[field]
			core, isCore := coreValues[field]
			if !known && !isCore {
				ps = append(ps, Problem{Field: path, Message: "is not a mapped field; see docs/mapping.md for the list"})
				continue
			}
			for ver, values := range versions {
				if ver != "5" && ver != "6" && ver != "*" {
					ps = append(ps, Problem{Field: path + "." + ver, Message: "taxonomy version must be 5, 6 or *"})
					continue
				}
				if isCore && field != "patients.sex" {
					// patients.sex also takes v6 GenderIdentity codes, which psgw cannot check.
					for value, code := range values {
						if !core.target(code) {
							ps = append(ps, Problem{Field: path + "." + ver, Message: "maps " + quoteValue(value) + " to " + quoteValue(code) +
								", which is neither one of " + strings.Join(core.words, ", ") + " nor its LFPSE code"})
						}
					}
					continue
				}
				if s == nil || s.ods {
					continue
				}
				for value, code := range values {
					if !s.vs.Has(code) {
						ps = append(ps, Problem{Field: path + "." + ver, Message: "maps " + quoteValue(value) + " to " + quoteValue(code) + ", which is not in value set " + s.vs.ID})
					}
				}
			}
		}
	}
	sortProblems(ps)
	return ps
}

func sortProblems(ps []Problem) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Field != ps[j].Field {
			return ps[i].Field < ps[j].Field
		}
		return ps[i].Message < ps[j].Message
	})
}
