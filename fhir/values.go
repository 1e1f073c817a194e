package fhir

import (
	"slices"
	"strings"
)

// An incident's event type, sex and harm take the ingest API's own words (incident, male,
// low, ...). An incident system that writes its own ("Near miss", "Male", "Low harm") maps
// them to those words with the source's code maps, under the keys below, like any coded
// answer (docs/mapping.md, "Local words for the core fields"). The map is applied wherever
// an incident is read, with ParseOptions.Codes: by every adapter as it takes the incident
// (HTTP, CSV, SQL) and by the mapper each time it maps one, replays included. So one map
// serves every adapter, and a record refused for a word its source's map lacked maps once
// the word is added and the record replayed.

// coreValue is one field of the incident model whose values are the ingest API's words.
type coreValue struct {
	// key is the field's code-map key.
	key string
	// words are the API's values, in the order problems list them.
	words []string
	// codes maps the field's LFPSE code to its word, so that a map may name either.
	codes map[string]string
}

var coreValues = func() map[string]coreValue {
	invert := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for word, code := range m {
			out[code] = word
		}
		return out
	}
	out := map[string]coreValue{}
	for _, v := range []coreValue{
		{key: "event_type", words: []string{EventIncident, EventRisk, EventOutcome, EventGoodCare}, codes: invert(eventCodes)},
		{key: "patients.sex", words: []string{"female", "male", "other", "unknown"}, codes: invert(sexCodes)},
		{key: "patients.physical_harm", words: []string{"none", "low", "moderate", "severe", "fatal"}, codes: invert(physicalHarmCodes)},
		{key: "patients.psychological_harm", words: []string{"none", "low", "moderate", "severe"}, codes: invert(psychologicalHarmCodes)},
	} {
		out[v.key] = v
	}
	return out
}()

// word returns the API's word for value: value itself when it is one, else what the
// source's code map makes of it (a word, or an LFPSE code of the field), else value
// unchanged, for Validate to refuse.
func (v coreValue) word(codes CodeMapper, source, value string) string {
	if value == "" || codes == nil || slices.Contains(v.words, value) {
		return value
	}
	c, ok := codes.Code(source, v.key, strings.TrimSpace(value))
	if !ok {
		return value
	}
	if slices.Contains(v.words, c) {
		return c
	}
	if w, ok := v.codes[c]; ok {
		return w
	}
	return value
}

// target reports whether a code map may map a local value of the field to code: one of the
// API's words or one of the field's LFPSE codes.
func (v coreValue) target(code string) bool {
	_, isCode := v.codes[code]
	return isCode || slices.Contains(v.words, code)
}

// translateValues turns the source's own words for the event type, sex and harm into the
// API's, with its code maps (see coreValues). Values that are already the API's, or that
// the map does not know, are left for Validate.
func (in *Incident) translateValues(codes CodeMapper) {
	if codes == nil {
		return
	}
	in.EventType = coreValues["event_type"].word(codes, in.Source, in.EventType)
	for i := range in.Patients {
		p := &in.Patients[i]
		p.Sex = coreValues["patients.sex"].word(codes, in.Source, p.Sex)
		p.PhysicalHarm = coreValues["patients.physical_harm"].word(codes, in.Source, p.PhysicalHarm)
		p.PsychologicalHarm = coreValues["patients.psychological_harm"].word(codes, in.Source, p.PsychologicalHarm)
	}
}

// mapHint is the end of a problem with a core field's value: where a source's own word for
// it is mapped.
func mapHint(source, key string) string {
	if source == "" || !sourcePattern.MatchString(source) {
		source = "NAME"
	}
	return `, or a word of the source's that sources.` + source + `.code_maps["` + key + `"] maps to one`
}
