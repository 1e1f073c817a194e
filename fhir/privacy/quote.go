package privacy

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxQuotedCode is the longest value QuoteCode quotes, in characters.
const MaxQuotedCode = 32

// maxQuotedDigits is the most digits a quoted value may hold: enough for any ODS code
// (A81001) or local role number, too few for a date of birth written as one number
// (01031975) or a hospital number of seven digits and more.
const maxQuotedDigits = 6

// QuoteCode renders a value from a coded field (a local code, an organisation code) for a
// reason, a warning or a history entry, which the status page, the API and the CLI show. A
// coded field may hold anything a sender typed into it, a patient's name and date of birth
// among them, so the value is quoted only when it reads as a code: one word of at most
// MaxQuotedCode ASCII letters, digits and the marks - _ . : + #, with at most six digits,
// no run of digits that could be a date written with separators, and no NHS number. Any
// other value is described, never shown: "[29 characters, not shown]". Quoting "Nurse" or
// "ZZZ99" tells an operator what to put in a code map; a value of several words is read
// with psgw map from the source's own record (docs/privacy.md, "Reasons, the status page,
// the API and the CLI").
func QuoteCode(s string) string {
	if CodeLike(s) {
		return strconv.Quote(s)
	}
	return "[" + strconv.Itoa(utf8.RuneCountInString(s)) + " characters, not shown]"
}

// CodeLike reports whether QuoteCode would quote s.
func CodeLike(s string) bool {
	return len(s) <= MaxQuotedCode && shapedLike(s, func(r rune) bool {
		return r < utf8.RuneSelf && unicode.IsLetter(r)
	}, "-_.:+#")
}

// FieldNameLike reports whether s, a key a sender used, reads as a field name and may be
// repeated in a warning: at most maxRunes letters (of any script), digits and the marks
// _ - . $ @, under the rules of CodeLike for digits, dates and NHS numbers.
func FieldNameLike(s string, maxRunes int) bool {
	return utf8.RuneCountInString(s) <= maxRunes && shapedLike(s, func(r rune) bool {
		return unicode.IsLetter(r) && !Invisible(r)
	}, "_-.$@")
}

// shapedLike reports whether s is one word of letter runes, digits and marks, with at most
// maxQuotedDigits digits, no date written with separators and no NHS number.
func shapedLike(s string, letter func(rune) bool, marks string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	digits := 0
	// groups counts runs of digits, and chained the runs that follow a mark right after the
	// run before: 01-03-75 has two, as any date written with separators has.
	groups, chained := 0, 0
	prevDigit, prevMark := false, false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
			if !prevDigit {
				groups++
				if prevMark && groups > 1 {
					chained++
				}
			}
			prevDigit, prevMark = true, false
		case letter(r):
			prevDigit, prevMark = false, false
		case r < utf8.RuneSelf && strings.IndexByte(marks, byte(r)) >= 0:
			prevMark, prevDigit = prevDigit, false
		default:
			return false // white space, '/', anything else
		}
	}
	return digits <= maxQuotedDigits && chained < 2 && !ContainsNHSNumber(s)
}
