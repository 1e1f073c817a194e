package ingest

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/fhir/privacy"
)

// LocalIDProblem says why id, read from a source record's id column or cell, cannot name the
// record in the delivery ledger, or returns "" when it can. The local id is shown on the status
// page, in the API and in the CLI, so a pull adapter takes a cell as the id only when it looks
// like an id: one token (no white space, so no prose that a shifted column or a wrong mapping
// put there), and the rules every incident's local id keeps (fhir.LocalIDProblem, checked in
// ParseIncident for every adapter): valid UTF-8, at most fhir.MaxLocalID characters, no
// control characters, no characters that do not show (zero-width, soft hyphen, bidi
// controls), and no NHS number in any spelling (as fhir/privacy finds them). Otherwise the
// adapter names the record by where it was (file and line, cursor).
//
// The answer names the rule broken, never the value, so it may go into a reason or a log.
func LocalIDProblem(id string) string {
	switch {
	case strings.TrimSpace(id) == "":
		return "it is empty"
	case !utf8.ValidString(id):
		return "it is not valid text"
	case utf8.RuneCountInString(id) > fhir.MaxLocalID:
		return "it is longer than " + strconv.Itoa(fhir.MaxLocalID) + " characters"
	case strings.ContainsFunc(id, unicode.IsSpace):
		return "it holds white space, so it is text, not an id"
	case strings.ContainsFunc(id, unicode.IsControl):
		return "it holds control characters"
	case strings.ContainsFunc(id, privacy.Invisible):
		return "it holds invisible or bidirectional formatting characters"
	case privacy.ContainsNHSNumber(id):
		return "it holds an NHS-number-shaped string"
	}
	return ""
}

// LookupSafe returns s as valid UTF-8 without control characters, cut to at most n bytes on a
// character boundary: fit to name a record by where it came from (a file name, a cursor) in
// the ledger and on the status page.
func LookupSafe(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
