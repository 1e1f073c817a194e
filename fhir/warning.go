package fhir

import (
	"strings"
	"unicode/utf8"
)

// Warning is something the sender should know about an incident that was accepted all the
// same: a field psgw did not use, or a value it had to fall back on or leave out. Nothing a
// source sends is dropped without one (docs/mapping.md). Field is the incident's JSON path
// ("patients[0].physicalHarm"); Message never quotes patient data. The JSON form is the one
// the ingest API's 202 answer carries.
type Warning struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	// Kind says what happened, for metrics and for switches that treat some kinds as
	// problems; it is not part of the API's answer.
	Kind WarningKind `json:"-"`
}

func (w Warning) String() string {
	if w.Field == "" {
		return w.Message
	}
	return w.Field + ": " + w.Message
}

// WarningKind classifies a Warning. The values are stable: they may label metrics.
type WarningKind string

// Kinds of warning.
const (
	// WarnUnknownField is a field psgw does not know, at any depth; its value is ignored.
	WarnUnknownField WarningKind = "unknown_field"
	// WarnFieldCase is a known field written with other letter case ("Sex"); it was read.
	WarnFieldCase WarningKind = "field_case"
	// WarnOther is a coded value with no LFPSE code, sent as the question's "Other" answer
	// with the value as its free text.
	WarnOther WarningKind = "other"
	// WarnUnknownODS is an organisation code missing from the taxonomy's ODS list, sent as
	// the free-text "Other" organisation: LFPSE may not attribute the event to it.
	WarnUnknownODS WarningKind = "unknown_ods"
	// WarnCodeAsIs is a local value that the source's code map for the field lacks but that
	// equals an LFPSE code, and was taken as that code.
	WarnCodeAsIs WarningKind = "code_as_is"
	// WarnNotSent is a known field that LFPSE has no question for in this taxonomy version,
	// or that the question logic leaves out (psychological harm beside a death).
	WarnNotSent WarningKind = "not_sent"
	// WarnAge is an age not sent, or sent less exactly than given, and why.
	WarnAge WarningKind = "age"
	// WarnSex is a patient's sex that could not be sent.
	WarnSex WarningKind = "sex"
	// WarnText is free text from which characters FHIR forbids, or that could disguise it,
	// were removed.
	WarnText WarningKind = "text"
)

// Fallback reports whether the kind is a fallback the mapping chose for a value it could not
// map as sent: an "Other" answer, an organisation outside the ODS list, or a local value
// taken as the LFPSE code it happens to equal. Builder.QuarantineFallbacks turns these into
// problems.
func (k WarningKind) Fallback() bool {
	return k == WarnOther || k == WarnUnknownODS || k == WarnCodeAsIs
}

// CountWarnings counts warnings by kind, for metrics.
func CountWarnings(ws []Warning) map[WarningKind]int {
	out := make(map[WarningKind]int, len(ws))
	for _, w := range ws {
		out[w.Kind]++
	}
	return out
}

// Bidirectional formatting characters that override or isolate the text's direction (the
// "Trojan Source" characters, Unicode TR #9): LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI.
// In free text they can make a report read differently from what it holds.
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// strippable reports whether r is removed from free text: C0 control characters other than
// tab, line feed and carriage return, which FHIR strings must not contain, and bidirectional
// overrides.
func strippable(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || isBidiControl(r)
}

// CleanText returns s without the characters free text may not carry to LFPSE (C0 controls
// other than tab, CR and LF; bidirectional overrides and isolates) and how many it removed.
// Text without any is returned as is, without allocating.
func CleanText(s string) (string, int) {
	i := strings.IndexFunc(s, strippable)
	if i < 0 {
		return s, 0
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	n := 0
	// Byte by byte, so that anything else, invalid UTF-8 included, is copied unchanged.
	for rest := s[i:]; rest != ""; {
		r, size := utf8.DecodeRuneInString(rest)
		if strippable(r) {
			n++
		} else {
			b.WriteString(rest[:size])
		}
		rest = rest[size:]
	}
	return b.String(), n
}
