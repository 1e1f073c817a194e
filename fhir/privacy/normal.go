package privacy

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The detectors do not read text as written but a normalised view of it, so that every
// spelling of an identifier that renders like it is found (docs/privacy.md):
//
//   - each character is taken in its Unicode compatibility decomposition (NFKD, which NFKC
//     only recomposes), so full-width "９", superscript "⁹" and circled "⑨" are 9, the
//     no-break space is a space, the long s is s and the ligature ﬁ is f and i;
//   - accents and other combining marks are dropped, and letters lower-cased, so "JOSÉ",
//     "José" and "jose" read alike;
//   - every decimal digit of any script counts by its value; a run of digits ends where the
//     script changes, though the next run of another script continues the number, so that
//     "９４３4765919" is one run and "9434765919߈" (an NKo digit after it) is two: a number
//     and one more digit;
//   - characters that do not show are skipped as if absent: format characters (soft
//     hyphen, zero-width space, joiners, word joiner, byte order mark, bidirectional
//     controls), other default-ignorable characters, variation selectors and control
//     characters other than line breaks and tabs.
//
// Each character of the view remembers the bytes of the original text it came from, so that
// what is found is replaced in the original, and the rest of the text is left byte for byte.

// unitClass is what a character of the view is to the detectors.
type unitClass uint8

const (
	classOther  unitClass = iota // punctuation, symbols, a placeholder
	classDigit                   // r is '0' to '9'
	classLetter                  // r is lower case, without marks
	classSep                     // may stand between the groups of a written number
)

// unit is one character of the normalised view.
type unit struct {
	r          rune
	class      unitClass
	start, end int32 // the bytes of the original text it comes from
	// zero is, for a digit of a script whose digits have no compatibility decomposition to
	// ASCII (Arabic-Indic, Devanagari, NKo, ...), that script's zero; 0 for every other digit.
	zero rune
}

// maxViewText bounds the texts the view is built for, so that a byte offset fits an int32.
// Free text is at most MaxText characters; anything longer is refused before it gets here.
const maxViewText = 1 << 30

// appendView appends the normalised view of s to dst. A placeholder already in s becomes one
// unit of classOther, so that a second pass over redacted text finds nothing in it.
func appendView(dst []unit, s string) []unit {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case '0' <= c && c <= '9':
				dst = append(dst, unit{r: rune(c), class: classDigit, start: int32(i), end: int32(i + 1)})
			case 'a' <= c && c <= 'z':
				dst = append(dst, unit{r: rune(c), class: classLetter, start: int32(i), end: int32(i + 1)})
			case 'A' <= c && c <= 'Z':
				dst = append(dst, unit{r: rune(c + 'a' - 'A'), class: classLetter, start: int32(i), end: int32(i + 1)})
			case c == '[':
				if n := placeholderAt(s, i); n > 0 {
					dst = append(dst, unit{r: '[', class: classOther, start: int32(i), end: int32(i + n)})
					i += n
					continue
				}
				dst = append(dst, unit{r: '[', class: classSep, start: int32(i), end: int32(i + 1)})
			case isSeparator(rune(c)):
				dst = append(dst, unit{r: rune(c), class: classSep, start: int32(i), end: int32(i + 1)})
			case c < 0x20 || c == 0x7f:
				// a control character: not shown, skipped
			default:
				dst = append(dst, unit{r: rune(c), class: classOther, start: int32(i), end: int32(i + 1)})
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			dst = append(dst, unit{r: r, class: classOther, start: int32(i), end: int32(i + 1)})
			i++
			continue
		}
		dst = appendRune(dst, s, i, r, w)
		i += w
	}
	return dst
}

// appendRune appends the units of the non-ASCII character r, w bytes at s[i:].
func appendRune(dst []unit, s string, i int, r rune, w int) []unit {
	if Invisible(r) || unicode.In(r, unicode.Mn, unicode.Me) {
		return dst
	}
	start, end := int32(i), int32(i+w)
	dec := norm.NFKD.PropertiesString(s[i : i+w]).Decomposition()
	if dec == nil {
		return appendNormal(dst, r, start, end)
	}
	for len(dec) > 0 {
		d, n := utf8.DecodeRune(dec)
		dec = dec[n:]
		dst = appendNormal(dst, d, start, end)
	}
	return dst
}

// appendNormal appends the unit of one character of a decomposition.
func appendNormal(dst []unit, r rune, start, end int32) []unit {
	switch {
	case r < utf8.RuneSelf:
		u := unit{r: r, class: classOther, start: start, end: end}
		switch {
		case '0' <= r && r <= '9':
			u.class = classDigit
		case 'a' <= r && r <= 'z':
			u.class = classLetter
		case 'A' <= r && r <= 'Z':
			u.r, u.class = r+'a'-'A', classLetter
		case isSeparator(r):
			u.class = classSep
		case r < 0x20 || r == 0x7f:
			return dst
		}
		return append(dst, u)
	case unicode.In(r, unicode.Mn, unicode.Me) || Invisible(r):
		return dst
	case unicode.IsDigit(r):
		zero := digitZero(r)
		return append(dst, unit{r: '0' + r - zero, class: classDigit, start: start, end: end, zero: zero})
	case unicode.IsLetter(r):
		return append(dst, unit{r: unicode.ToLower(r), class: classLetter, start: start, end: end})
	case isSeparator(r):
		return append(dst, unit{r: r, class: classSep, start: start, end: end})
	}
	return append(dst, unit{r: r, class: classOther, start: start, end: end})
}

// Invisible reports whether r is a character that does not show in text: a format
// character (soft hyphen, zero-width space and joiners, word joiner, byte order mark,
// bidirectional marks, embeddings, overrides and isolates, ...), another default-ignorable
// character (Hangul fillers, ...), a variation selector, or a control character that is not a
// tab or line break. Such characters can hide an identifier from a plain search and make
// two different ids look alike, so the redactor reads text without them and an id may not
// hold them (docs/privacy.md).
func Invisible(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\t' && r != '\n' && r != '\r' && r != '\v' && r != '\f'
	case r < 0x7f:
		return false
	case r <= 0x9f:
		return r != 0x85 // NEL is a line break
	}
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// isSeparator reports whether r (normalised) may stand between the digit groups of a
// written number: white space of any kind and line breaks, hyphens and dashes of any kind,
// the minus sign, brackets, and / _ , . · and the fraction and division slashes. Any run of
// them joins two groups.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', '/', '_', ',', '.', '(', ')', '[', ']', '{', '}', '-',
		'\u0085', '\u00b7', '\u2028', '\u2029', '\u2044', '\u2212', '\u2215', '\u2027', '\u2800', '\u30fb':
		return true
	case ':', ';', '!', '?', '#', '+', '*', '\'', '"', '&', '%', '$', '@', '<', '>', '=', '|', '\\', '~', '^', '`':
		return false
	}
	return r >= utf8.RuneSelf && unicode.In(r, unicode.Zs, unicode.Pd, unicode.Ps, unicode.Pe)
}

// digitZero is the zero of the set of the decimal digit r. Unicode encodes every set of
// decimal digits as ten consecutive code points from 0 to 9, and sets may follow one another
// (the mathematical digits), so the zero is found from the start of the run of digit code
// points, in steps of ten.
func digitZero(r rune) rune {
	if '\uff10' <= r && r <= '\uff19' { // full-width, the common case
		return '\uff10'
	}
	z := r
	for unicode.IsDigit(z - 1) {
		z--
	}
	return r - (r-z)%10
}
