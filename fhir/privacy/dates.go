package privacy

import "unicode/utf8"

// tok is a run of units of the view of one class: a number (digits), a word (letters),
// a run of separators; anything else is a token of its own.
type tok struct {
	class       unitClass
	first, last int // units
	n           int // units in it
	val         int // a number's value, when it has at most 9 digits
}

// appendTokens appends the tokens of the view u.
func appendTokens(dst []tok, u []unit) []tok {
	for i := 0; i < len(u); {
		t := tok{class: u[i].class, first: i}
		for i < len(u) && u[i].class == t.class {
			if t.class == classDigit && i-t.first < 9 {
				t.val = t.val*10 + int(u[i].r-'0')
			}
			i++
			if t.class == classOther {
				break
			}
		}
		t.last, t.n = i-1, i-t.first
		dst = append(dst, t)
	}
	return dst
}

// text appends a word token's letters to buf, as UTF-8.
func (t tok) text(u []unit, buf []byte) []byte {
	for _, x := range u[t.first : t.last+1] {
		buf = utf8.AppendRune(buf, x.r)
	}
	return buf
}

// is reports whether a word token is w (lower case ASCII).
func (t tok) is(u []unit, w string) bool {
	if t.class != classLetter || t.n != len(w) {
		return false
	}
	for j, x := range u[t.first : t.last+1] {
		if x.r != rune(w[j]) {
			return false
		}
	}
	return true
}

// next returns the index of the number or word after tokens[i], allowing one run of
// separators between them, or -1.
func next(tokens []tok, i int) int {
	i++
	if i < len(tokens) && tokens[i].class == classSep {
		i++
	}
	if i < len(tokens) && (tokens[i].class == classDigit || tokens[i].class == classLetter) {
		return i
	}
	return -1
}

// nextDigits returns next(tokens, i) when it is a number, else -1.
func nextDigits(tokens []tok, i int) int {
	if j := next(tokens, i); j >= 0 && tokens[j].class == classDigit {
		return j
	}
	return -1
}

var monthNames = [12][]string{
	{"january", "jan"}, {"february", "feb"}, {"march", "mar"}, {"april", "apr"}, {"may"}, {"june", "jun"},
	{"july", "jul"}, {"august", "aug"}, {"september", "sep", "sept"}, {"october", "oct"},
	{"november", "nov"}, {"december", "dec"},
}

// isMonth reports whether tokens[i] is month m's name or abbreviation.
func isMonth(tokens []tok, i int, u []unit, m int) bool {
	if i < 0 || tokens[i].class != classLetter {
		return false
	}
	for _, name := range monthNames[m-1] {
		if tokens[i].is(u, name) {
			return true
		}
	}
	return false
}

// matchAt returns the last token of d written from tokens[i], or -1. The written forms,
// with any one run of separators between parts (spaces, / - . , and the rest, see
// isSeparator):
//
//	day month year        01/03/1975  1/3/75  01.03.1975  1-3-1975  1 3 1975
//	month day year        03/01/1975  3/1/75
//	year month day        1975-03-01  1975/3/1
//	as one number         01031975  19750301  03011975  010375  750301  030175
//	day month-name year   1 March 1975  1st March 1975  1st of March, 1975  01-Mar-75
//	month-name day year   March 1 1975  Mar 1st, 1975  Mar. 1, 75
//	year month-name day   1975 Mar 1  1975-MAR-01
//
// A year is four digits, or its last two. A day or month is one or two digits.
func (d date) matchAt(tokens []tok, i int, u []unit) int {
	t := tokens[i]
	if t.class == classLetter {
		if !isMonth(tokens, i, u, d.m) {
			return -1
		}
		day := nextDigits(tokens, i)
		if !d.isDay(tokens, day) {
			return -1
		}
		day = d.ordinal(tokens, day, u)
		if y := nextDigits(tokens, day); d.isYear(tokens, y) {
			return y
		}
		return -1
	}
	if t.n == 8 || t.n == 6 {
		if d.compact(t, u) {
			return i
		}
		return -1
	}
	second := next(tokens, i)
	if second < 0 {
		return -1
	}
	if tokens[second].class == classDigit {
		third := nextDigits(tokens, second)
		if third < 0 {
			return -1
		}
		a, b := tokens[second], tokens[third]
		switch {
		case t.n <= 2 && a.n <= 2 && d.isYear(tokens, third) && (t.val == d.d && a.val == d.m || t.val == d.m && a.val == d.d):
			return third
		case t.n == 4 && t.val == d.y && a.n <= 2 && a.val == d.m && b.n <= 2 && b.val == d.d:
			return third
		}
		return -1
	}
	if d.isDay(tokens, i) { // day [ordinal] [of] month year
		j := d.ordinal(tokens, i, u)
		month := next(tokens, j)
		if month >= 0 && tokens[month].is(u, "of") {
			month = next(tokens, month)
		}
		if isMonth(tokens, month, u, d.m) {
			if y := nextDigits(tokens, month); d.isYear(tokens, y) {
				return y
			}
		}
		return -1
	}
	if t.n == 4 && t.val == d.y && isMonth(tokens, second, u, d.m) { // year month day
		if day := nextDigits(tokens, second); d.isDay(tokens, day) {
			return d.ordinal(tokens, day, u)
		}
	}
	return -1
}

func (d date) isDay(tokens []tok, i int) bool {
	return i >= 0 && tokens[i].class == classDigit && tokens[i].n <= 2 && tokens[i].val == d.d
}

func (d date) isYear(tokens []tok, i int) bool {
	if i < 0 || tokens[i].class != classDigit {
		return false
	}
	t := tokens[i]
	return t.n == 4 && t.val == d.y || t.n == 2 && t.val == d.y%100
}

// ordinal returns the index of the suffix written right after the day ("1st", "2nd", "3rd",
// "4th", and "1ˢᵗ", whose superscript letters the view reads as s and t), or day itself.
func (d date) ordinal(tokens []tok, day int, u []unit) int {
	if j := day + 1; j < len(tokens) {
		for _, suffix := range []string{"st", "nd", "rd", "th"} {
			if tokens[j].is(u, suffix) {
				return j
			}
		}
	}
	return day
}

// compact reports whether a number of six or eight digits is d written without separators.
func (d date) compact(t tok, u []unit) bool {
	var got [8]byte
	for j, x := range u[t.first : t.last+1] {
		got[j] = byte(x.r)
	}
	dd, mm, yy := two(d.d), two(d.m), two(d.y%100)
	forms := [3][8]byte{}
	if t.n == 8 {
		cc := two(d.y / 100)
		forms[0] = [8]byte{dd[0], dd[1], mm[0], mm[1], cc[0], cc[1], yy[0], yy[1]}
		forms[1] = [8]byte{cc[0], cc[1], yy[0], yy[1], mm[0], mm[1], dd[0], dd[1]}
		forms[2] = [8]byte{mm[0], mm[1], dd[0], dd[1], cc[0], cc[1], yy[0], yy[1]}
	} else {
		forms[0] = [8]byte{dd[0], dd[1], mm[0], mm[1], yy[0], yy[1]}
		forms[1] = [8]byte{yy[0], yy[1], mm[0], mm[1], dd[0], dd[1]}
		forms[2] = [8]byte{mm[0], mm[1], dd[0], dd[1], yy[0], yy[1]}
	}
	for _, f := range forms {
		if f == got {
			return true
		}
	}
	return false
}

func two(n int) [2]byte { return [2]byte{byte('0' + n/10%10), byte('0' + n%10)} }
