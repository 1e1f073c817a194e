package privacy

import "strings"

// Placeholder replaces every NHS number that RedactText finds. It contains
// no digits, so redacted text never yields a new match.
const Placeholder = "[REDACTED NHS NUMBER]"

// RedactText replaces every NHS number in free text with Placeholder and
// returns the new text and how many it replaced.
//
// A candidate is ten ASCII digits, either contiguous ("9434765919") or in
// 3-3-4 groups each separated by one space or hyphen ("943 476 5919",
// "943-476-5919"), that is not part of a longer digit run and passes the
// Modulus 11 check (see ValidNHSNumber). Longer runs are left alone: they
// are other numbers (phone numbers, SNOMED ids), and a ten-digit window
// inside them would be a false positive one time in eleven.
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

// nextNHSNumber returns the byte offsets [start, end) of the first NHS
// number in s at or after from, or -1, -1.
//
// Candidates can only start where a digit run starts, and a match is always
// followed by a non-digit, so resuming at end never skips a candidate.
func nextNHSNumber(s string, from int) (start, end int) {
	for i := from; i < len(s); i++ {
		if !isDigit(s[i]) || (i > 0 && isDigit(s[i-1])) {
			continue
		}
		if n := matchAt(s, i); n > 0 {
			return i, i + n
		}
	}
	return -1, -1
}

// matchAt returns the length of the NHS number starting at s[i], which is
// the first digit of a run, or 0 if there is none.
func matchAt(s string, i int) int {
	var d [10]byte
	n := 0 // digits taken
	j := i
	for j < len(s) && n < 10 {
		c := s[j]
		switch {
		case isDigit(c):
			d[n] = c - '0'
			n++
			j++
		case (n == 3 || n == 6) && (c == ' ' || c == '-') && j == groupEnd(i, n) &&
			j+1 < len(s) && isDigit(s[j+1]):
			j++ // one separator between groups, only in the 3-3-4 form
		default:
			return 0
		}
	}
	if n < 10 || (j < len(s) && isDigit(s[j])) {
		return 0
	}
	// Contiguous (10 bytes) or fully grouped (12 bytes); "943 4765919" is
	// neither and is not an NHS number's written form.
	if l := j - i; l != 10 && l != 12 {
		return 0
	}
	if !mod11Valid(&d) {
		return 0
	}
	return j - i
}

// groupEnd is where a separator may sit after n digits in the grouped form
// starting at i: right after the third digit, or after the sixth digit and
// the first separator.
func groupEnd(i, n int) int {
	if n == 3 {
		return i + 3
	}
	return i + 7
}
