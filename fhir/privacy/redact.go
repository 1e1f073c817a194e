package privacy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Placeholder replaces every NHS number that RedactText finds. It contains
// no digits, so redacted text never yields a new match.
const Placeholder = "[REDACTED NHS NUMBER]"

// RedactText replaces every NHS number in free text with Placeholder and
// returns the new text and how many it replaced.
//
// A candidate is ten decimal digits that pass the Modulus 11 check (see
// ValidNHSNumber), written in one of these shapes:
//
//   - one run of ten digits ("9434765919");
//   - two or three runs of three to seven digits each, ten in all, joined by
//     separators: "943 476 5919", "943-476-5919", "943.476.5919",
//     "9434 765 919", "943 4765919", "94347 65919", "943 - 476 - 5919".
//
// A separator is one space, tab, hyphen or full stop, or one of their common
// Unicode forms (no-break, thin, figure and ideographic spaces; the Unicode
// hyphens, en dash and minus sign; full-width hyphen and full stop), or a
// dash between two spaces (" - "). Two spaces in a row are not one.
// Digits are any Unicode decimal digits, so full-width "９４３４７６５９１９"
// is found too; the digits of one run are all of one script (see digitAt).
//
// A run of digits is never split: a run longer than ten (a 12-digit number,
// a dm+d id) is left alone, and so is a shorter run that is glued to one
// ("1943 476 5919"), since a ten-digit window inside a longer number would be
// a false positive one time in eleven. Runs of one or two digits never take
// part ("94 34 76 59 19" is not found), so that lists of small numbers and
// dates such as "14 03 2025" are not read as one. Runs around a candidate
// may be joined to it by separators ("bed 1 943 476 5919" is found): the
// first candidate in the text wins, and the search resumes after it.
//
// When nothing is found, s is returned as is, without allocating.
func RedactText(s string) (out string, count int) {
	start, end := nextNHSNumber(s, 0)
	if start < 0 {
		return s, 0
	}
	var b strings.Builder
	b.Grow(len(s) + len(Placeholder))
	last := 0
	for start >= 0 {
		b.WriteString(s[last:start])
		b.WriteString(Placeholder)
		count++
		last = end
		start, end = nextNHSNumber(s, end)
	}
	b.WriteString(s[last:])
	return b.String(), count
}

// ContainsNHSNumber reports whether RedactText would redact anything in s.
func ContainsNHSNumber(s string) bool {
	start, _ := nextNHSNumber(s, 0)
	return start >= 0
}

// digitRun is one maximal run of decimal digits in the text.
type digitRun struct {
	start, end int      // byte offsets
	n          int      // digits in the run, counted up to 11
	d          [10]byte // the first ten digit values
}

// nextNHSNumber returns the byte offsets [start, end) of the first NHS
// number in s at or after from, or -1, -1. from is 0 or the end of a match,
// which is never inside a digit run.
//
// It walks the digit runs left to right, keeping the last three that are
// joined by separators (a chain), and after each run tries the candidates
// that end with it, the longest first. A candidate that ends with an earlier
// run is always tried before one that ends with a later run, so a second
// pass over redacted text finds nothing new: the candidates it could try
// were tried, and refused, by the first.
func nextNHSNumber(s string, from int) (start, end int) {
	var chain [3]digitRun
	k := 0 // runs in chain
	for i := from; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && !isDigit(c) {
			i++ // the common case, kept cheap: most text has no digit here
			continue
		}
		_, set, w := digitAt(s, i)
		if w == 0 {
			i += skipWidth(s, i)
			continue
		}
		r := digitRun{start: i}
		for i < len(s) {
			v, vset, w := digitAt(s, i)
			if w == 0 || vset != set {
				break
			}
			if r.n < 10 {
				r.d[r.n] = v
			}
			if r.n <= 10 {
				r.n++
			}
			i += w
		}
		r.end = i
		if k > 0 && !separated(s, chain[k-1].end, r.start) {
			k = 0
		}
		if k == len(chain) {
			copy(chain[:], chain[1:])
			k--
		}
		chain[k] = r
		k++
		for size := k; size >= 1; size-- {
			if isNHSNumber(chain[k-size : k]) {
				return chain[k-size].start, r.end
			}
		}
	}
	return -1, -1
}

// isNHSNumber reports whether runs, joined by separators, are a written NHS
// number: one run of ten digits, or two or three runs of three to seven,
// ten in all, that pass Modulus 11.
func isNHSNumber(runs []digitRun) bool {
	var d [10]byte
	n := 0
	for _, r := range runs {
		if len(runs) == 1 {
			if r.n != 10 {
				return false
			}
		} else if r.n < 3 || r.n > 7 {
			return false
		}
		if n+r.n > 10 {
			return false
		}
		copy(d[n:], r.d[:r.n])
		n += r.n
	}
	return n == 10 && mod11Valid(&d)
}

// separated reports whether s[from:to] joins two runs of one written
// number: one separator character, or a dash between two spaces (" - ").
// Two spaces in a row do not join runs.
func separated(s string, from, to int) bool {
	var rs [3]rune
	n := 0
	for i := from; i < to; n++ {
		w := separatorAt(s, i)
		if w == 0 || n == len(rs) {
			return false
		}
		rs[n], _ = utf8.DecodeRuneInString(s[i:])
		i += w
	}
	switch n {
	case 1:
		return true
	case 3:
		return isSpace(rs[0]) && isDash(rs[1]) && isSpace(rs[2])
	}
	return false
}

// separatorAt returns the byte width of the separator at s[i], or 0.
func separatorAt(s string, i int) int {
	if c := s[i]; c < utf8.RuneSelf {
		if isSpace(rune(c)) || isDash(rune(c)) || c == '.' {
			return 1
		}
		return 0
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if isSpace(r) || isDash(r) || r == '\uff0e' { // full-width full stop
		return w
	}
	return 0
}

// isSpace reports whether r is a space that may sit between the digit
// groups of a number: space, tab, or a no-break, figure, thin, narrow
// no-break or ideographic space.
func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\u00a0', '\u2007', '\u2009', '\u202f', '\u3000':
		return true
	}
	return false
}

// isDash reports whether r is a hyphen or dash: hyphen-minus, the Unicode
// hyphens, figure dash, en dash, minus sign, or full-width hyphen-minus.
func isDash(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2212', '\uff0d':
		return true
	}
	return false
}

// digitAt returns the value, digit set and byte width of the decimal digit
// at s[i], or width 0 if there is none. Any Unicode decimal digit (category
// Nd) counts; its set is the code point of its zero ('0' for ASCII, '０' for
// full-width). A number is written in one set, so a run of digits ends where
// the set changes: "9434765919" stays a run of ten whatever digit of another
// script follows it.
func digitAt(s string, i int) (value byte, set rune, width int) {
	c := s[i]
	switch {
	case isDigit(c):
		return c - '0', '0', 1
	case c < utf8.RuneSelf:
		return 0, 0, 0
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError || !unicode.IsDigit(r) {
		return 0, 0, 0
	}
	zero := digitZero(r)
	return byte(r - zero), zero, w
}

// digitZero is the zero of a non-ASCII decimal digit's set. Unicode encodes
// every set of decimal digits as ten consecutive code points from 0 to 9, and
// sets may follow one another (the mathematical digits), so the zero is found
// from the start of the run of digit code points, in steps of ten.
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

// skipWidth is how far to move past the non-digit at s[i]: one byte for
// ASCII, the whole character otherwise.
func skipWidth(s string, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, w := utf8.DecodeRuneInString(s[i:])
	return w
}
