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

// digitRun is a maximal run of digit units of the view, first to last.
type digitRun struct{ first, last, n int }

// maxRuns is the most runs one number can be written in: ten of one digit each.
const maxRuns = 10

// appendNHSNumbers appends a span for each NHS number in the view u, as RedactText finds
// them.
//
// It walks the runs of digits (of one script each) left to right, keeping the last ones
// joined by separators, or by nothing where the script changes (a chain). After each run, the only candidate that ends with it is the window of whole runs
// back from it that holds exactly ten digits, if there is one. A number found ends the
// chain: the search goes on from the next run. Since every candidate is decided when its
// last run ends, and a placeholder (opaque to the view) ends a chain as the number it
// replaced did, a second pass over redacted text finds nothing new.
func appendNHSNumbers(spans []span, u []unit) []span {
	var chain [maxRuns]digitRun
	k := 0
	for i := 0; i < len(u); {
		if u[i].class != classDigit {
			i++
			continue
		}
		r := digitRun{first: i}
		for i < len(u) && u[i].class == classDigit && u[i].zero == u[r.first].zero {
			i++
		}
		r.last, r.n = i-1, i-r.first
		if k > 0 && chain[k-1].last+1 != r.first && !joined(u, chain[k-1].last+1, r.first) {
			k = 0
		}
		if k == maxRuns {
			copy(chain[:], chain[1:])
			k--
		}
		chain[k] = r
		k++
		n, j := 0, k-1
		for ; j >= 0; j-- {
			if n += chain[j].n; n >= 10 {
				break
			}
		}
		if n != 10 || !digitsValid(u, chain[j].first, r.last) {
			continue
		}
		first, last := chain[j].first, r.last
		// Digits of another script glued to the number go with it ("9434765919߈"): every span
		// is made of whole words and numbers of the view, so that replacing one never changes
		// where another starts or ends.
		for first > 0 && u[first-1].class == classDigit {
			first--
		}
		for last+1 < len(u) && u[last+1].class == classDigit {
			last++
		}
		spans = append(spans, span{first: withOpeningBracket(u, first, last), last: last, kind: KindNHSNumber})
		i = last + 1
		k = 0
	}
	return spans
}

// joined reports whether the units from to to (exclusive), between two runs of digits, are
// all separators.
func joined(u []unit, from, to int) bool {
	for _, x := range u[from:to] {
		if x.class != classSep {
			return false
		}
	}
	return from < to
}

// digitsValid reports whether the ten digit units among u[first:last+1] pass Modulus 11.
func digitsValid(u []unit, first, last int) bool {
	var d [10]byte
	n := 0
	for _, x := range u[first : last+1] {
		if x.class == classDigit {
			d[n] = byte(x.r - '0')
			n++
		}
	}
	return mod11Valid(&d)
}

// withOpeningBracket returns first, or the unit before it when that is an opening bracket
// whose closing one is in the number ("(943) 476 5919"), so that none is left dangling.
func withOpeningBracket(u []unit, first, last int) int {
	if first == 0 {
		return first
	}
	var closing rune
	switch u[first-1].r {
	case '(':
		closing = ')'
	case '[':
		closing = ']'
	case '{':
		closing = '}'
	default:
		return first
	}
	for _, x := range u[first : last+1] {
		if x.r == closing {
			return first - 1
		}
	}
	return first
}
