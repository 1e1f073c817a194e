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

// month returns the month that tokens[i] names or abbreviates, 1 to 12, or 0.
func month(tokens []tok, i int, u []unit) int {
	if i < 0 || tokens[i].class != classLetter || tokens[i].n < 3 || tokens[i].n > 9 {
		return 0
	}
	for m, names := range monthNames {
		for _, name := range names {
			if tokens[i].is(u, name) {
				return m + 1
			}
		}
	}
	return 0
}

// dateSet holds dates of birth, and the same with the year's last two digits, for what is
// written with a two-digit year.
type dateSet struct {
	full, short map[date]struct{}
}

func (s *dateSet) add(d date) {
	if s.full == nil {
		s.full, s.short = map[date]struct{}{}, map[date]struct{}{}
	}
	s.full[d] = struct{}{}
	s.short[date{d.y % 100, d.m, d.d}] = struct{}{}
}

func (s *dateSet) empty() bool { return len(s.full) == 0 }

// has reports whether the year (a number token), month and day make one of the dates.
func (s *dateSet) has(year tok, m, d int) bool {
	switch year.n {
	case 4:
		_, ok := s.full[date{year.val, m, d}]
		return ok
	case 2:
		_, ok := s.short[date{year.val, m, d}]
		return ok
	}
	return false
}

// matchAt returns the last token of a date of s written from tokens[i], or -1. The written
// forms, with any one run of separators between parts (spaces, / - . , and the rest, see
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
// A year is four digits, or its last two. A day or month is one or two digits. The tokens
// are read as a date, which is then looked up, so the time does not grow with the number of
// dates known.
func (s *dateSet) matchAt(tokens []tok, i int, u []unit) int {
	t := tokens[i]
	if t.class == classLetter { // month-name day year
		m := month(tokens, i, u)
		if m == 0 {
			return -1
		}
		day := nextDigits(tokens, i)
		if day < 0 || tokens[day].n > 2 {
			return -1
		}
		y := nextDigits(tokens, ordinal(tokens, day, u))
		if y >= 0 && s.has(tokens[y], m, tokens[day].val) {
			return y
		}
		return -1
	}
	if t.n == 8 || t.n == 6 {
		if s.compact(t, u) {
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
		case t.n <= 2 && a.n <= 2 && (s.has(b, a.val, t.val) || s.has(b, t.val, a.val)):
			return third
		case t.n == 4 && a.n <= 2 && b.n <= 2 && s.has(t, a.val, b.val):
			return third
		}
		return -1
	}
	if t.n <= 2 { // day [ordinal] [of] month-name year
		mi := next(tokens, ordinal(tokens, i, u))
		if mi >= 0 && tokens[mi].is(u, "of") {
			mi = next(tokens, mi)
		}
		if m := month(tokens, mi, u); m > 0 {
			if y := nextDigits(tokens, mi); y >= 0 && s.has(tokens[y], m, t.val) {
				return y
			}
		}
		return -1
	}
	if m := month(tokens, second, u); t.n == 4 && m > 0 { // year month-name day
		if day := nextDigits(tokens, second); day >= 0 && tokens[day].n <= 2 && s.has(t, m, tokens[day].val) {
			return ordinal(tokens, day, u)
		}
	}
	return -1
}

// ordinal returns the index of the suffix written right after the day ("1st", "2nd", "3rd",
// "4th", and "1ˢᵗ", whose superscript letters the view reads as s and t), or day itself.
func ordinal(tokens []tok, day int, u []unit) int {
	if j := day + 1; j < len(tokens) {
		for _, suffix := range []string{"st", "nd", "rd", "th"} {
			if tokens[j].is(u, suffix) {
				return j
			}
		}
	}
	return day
}

// compact reports whether a number of six or eight digits is a date of s written without
// separators: ddmmyyyy, yyyymmdd, mmddyyyy, or ddmmyy, yymmdd, mmddyy.
func (s *dateSet) compact(t tok, u []unit) bool {
	var v [8]int
	for j, x := range u[t.first : t.last+1] {
		v[j] = int(x.r - '0')
	}
	two := func(j int) int { return v[j]*10 + v[j+1] }
	year := func(j, n int) tok { // the year of n digits at v[j:]
		y := two(j)
		if n == 4 {
			y = y*100 + two(j+2)
		}
		return tok{class: classDigit, n: n, val: y}
	}
	if t.n == 8 {
		return s.has(year(4, 4), two(2), two(0)) || s.has(year(0, 4), two(4), two(6)) || s.has(year(4, 4), two(0), two(2))
	}
	return s.has(year(4, 2), two(2), two(0)) || s.has(year(0, 2), two(2), two(4)) || s.has(year(4, 2), two(0), two(2))
}
