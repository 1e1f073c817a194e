package privacy

// ValidNHSNumber reports whether s is exactly ten ASCII digits whose last
// digit is the Modulus 11 check digit of the first nine: weights 10 down to 2,
// check = 11 - (sum mod 11), where 11 becomes 0 and 10 means no number with
// those nine digits is valid.
//
// Only the Modulus 11 rule is applied. Numbers that pass it but are never
// issued (such as 0000000000) are still reported valid, because the
// redaction built on this function should err towards redacting.
func ValidNHSNumber(s string) bool {
	if len(s) != 10 {
		return false
	}
	var d [10]byte
	for i := range 10 {
		if !isDigit(s[i]) {
			return false
		}
		d[i] = s[i] - '0'
	}
	return mod11Valid(&d)
}

// mod11Valid applies the Modulus 11 rule to ten digit values.
func mod11Valid(d *[10]byte) bool {
	sum := 0
	for i := range 9 {
		sum += int(d[i]) * (10 - i)
	}
	check := 11 - sum%11
	switch check {
	case 11:
		check = 0
	case 10:
		return false
	}
	return int(d[9]) == check
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
