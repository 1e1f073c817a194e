package privacy

import "strings"

// isUKPostcode reports whether s, as a whole value, is a UK postcode:
// outward code A9, A99, AA9, AA99, A9A or AA9A, optional space, inward code
// 9AA. Case is ignored. Only whole values are tested: postcode-like words
// occur in prose too often to search for them there.
func isUKPostcode(s string) bool {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.Replace(s, " ", "", 1)
	if len(s) < 5 || len(s) > 7 {
		return false
	}
	out, in := s[:len(s)-3], s[len(s)-3:]
	if !isDigit(in[0]) || !isLetter(in[1]) || !isLetter(in[2]) {
		return false
	}
	switch pattern(out) {
	case "A9", "A99", "AA9", "AA99", "A9A", "AA9A":
		return true
	}
	return false
}

func pattern(s string) string {
	var b strings.Builder
	for i := range len(s) {
		switch c := s[i]; {
		case isDigit(c):
			b.WriteByte('9')
		case isLetter(c):
			b.WriteByte('A')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func isLetter(c byte) bool { return 'A' <= c && c <= 'Z' }
