package privacy

import (
	"time"
)

// Known are the identifiers the gateway knows for the patients of one incident: from the
// incident itself and from the EPR's demographics. Redactor removes every one of them from
// free text, in the spellings docs/privacy.md lists. Values that cannot be an identifier of
// their kind, or are too short to remove safely, are ignored (see NewRedactor).
type Known struct {
	// NHSNumbers are ten digits; separators are ignored.
	NHSNumbers []string
	// LocalIDs are local patient ids (MRNs, hospital numbers).
	LocalIDs []string
	// BirthDates are dates of birth, YYYY-MM-DD.
	BirthDates []string
	// Names are family and given names, one or more words each ("Mary Anne", "Smith-Jones").
	Names []string
}

// Rules for what is too short or too common to redact: removing it would turn ordinary words
// and numbers into placeholders (docs/privacy.md, "What is removed").
const (
	// MinNameLetters is the fewest letters a word of a name needs to be redacted: a one-letter
	// given name or initial is left alone, a two-letter family name ("Ng", "Li") is not.
	MinNameLetters = 2
	// MinLocalIDChars is the fewest letters and digits a local patient id needs to be
	// redacted; an id of digits only needs MinLocalIDDigits, so that an id such as "1" or
	// "2024" does not remove every such number from the text.
	MinLocalIDChars  = 4
	MinLocalIDDigits = 6
)

// Redactor removes NHS-number-shaped strings and the known identifiers of one incident's
// patients from free text. A nil Redactor knows no identifiers and removes NHS-number-shaped
// strings only, as RedactText. It is immutable once built and safe for concurrent use.
type Redactor struct {
	nhs   [][10]byte          // digit values
	ids   *idMatcher          // the normalised letters and digits of each local id
	dobs  dateSet             // dates of birth
	names map[string]struct{} // normalised words of names
}

type date struct{ y, m, d int }

// NewRedactor prepares the redaction of k. It ignores NHS numbers that are not ten digits,
// dates that are not YYYY-MM-DD, words of names of fewer than MinNameLetters letters and
// local ids shorter than MinLocalIDChars (MinLocalIDDigits for digits only). Names and ids
// are compared through the normalised view, so case, accents, full-width letters and
// characters that do not show make no difference.
func NewRedactor(k Known) *Redactor {
	r := &Redactor{}
	sc := getScratch()
	defer putScratch(sc)
	for _, s := range k.NHSNumbers {
		var d [10]byte
		n := 0
		sc.units = appendView(sc.units[:0], s)
		for _, x := range sc.units {
			if x.class == classDigit {
				if n < len(d) {
					d[n] = byte(x.r - '0')
				}
				n++
			}
		}
		if n == 10 && !containsNHS(r.nhs, d) {
			r.nhs = append(r.nhs, d)
		}
	}
	for _, s := range k.BirthDates {
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			r.dobs.add(date{t.Year(), int(t.Month()), t.Day()})
		}
	}
	for _, s := range k.Names {
		sc.units = appendView(sc.units[:0], s)
		sc.tokens = appendTokens(sc.tokens[:0], sc.units)
		for _, t := range sc.tokens {
			if t.class == classLetter && t.n >= MinNameLetters {
				if r.names == nil {
					r.names = map[string]struct{}{}
				}
				sc.word = t.text(sc.units, sc.word[:0])
				r.names[string(sc.word)] = struct{}{}
			}
		}
	}
	var ids [][]rune
	for _, s := range k.LocalIDs {
		var key []rune
		letters := false
		sc.units = appendView(sc.units[:0], s)
		for _, x := range sc.units {
			if x.class == classDigit || x.class == classLetter {
				key = append(key, x.r)
				letters = letters || x.class == classLetter
			}
		}
		if len(key) >= MinLocalIDChars && (letters || len(key) >= MinLocalIDDigits) {
			ids = append(ids, key)
		}
	}
	r.ids = newIDMatcher(ids)
	return r
}

func containsNHS(list [][10]byte, d [10]byte) bool {
	for _, x := range list {
		if x == d {
			return true
		}
	}
	return false
}

// Text returns s with every NHS-number-shaped string (as RedactText finds them) and every
// known identifier replaced by the placeholder of its kind, and how many of each it
// replaced. The placeholders say what was removed: "[REDACTED NHS NUMBER]", "[REDACTED
// PATIENT ID]", "[REDACTED DATE OF BIRTH]", "[REDACTED NAME]"; they never make the text
// longer than MaxText (see render).
//
// Known identifiers are found as follows (docs/privacy.md has the whole list):
//   - NHS numbers: the ten digits in a row within any digits joined by separators, even as
//     part of a longer number, which then goes with it;
//   - dates of birth: as numbers (01/03/1975, 1/3/75, 1975-03-01, 01.03.1975, 1 3 1975,
//     01031975, 010375, and month first), and with the month's name or abbreviation
//     (1 March 1975, 1st of March 1975, 1-Mar-75, March 1, 1975, Mar 1st 1975, 1975 Mar 1);
//   - names: each word of a name as a whole word, ignoring case and accents;
//   - local ids: their letters and digits in order, ignoring case, with separators allowed
//     between them, from the start of a word or number to the end of one (not inside a
//     longer run of letters or of digits).
//
// Only the characters that make up an identifier are replaced; the rest of s is left byte
// for byte. When nothing is found, s is returned as is.
func (r *Redactor) Text(s string) (string, Counts) {
	if s == "" || !r.mayHold(s) {
		return s, Counts{}
	}
	if len(s) > maxViewText {
		return "", Counts{KindNHSNumber: 1} // never reached: no free text is this long
	}
	sc := getScratch()
	defer putScratch(sc)
	sc.units = appendView(sc.units[:0], s)
	sc.spans = r.appendSpans(sc, sc.spans[:0])
	return render(s, sc.units, sc.spans)
}

// Contains reports whether Text would redact anything in s.
func (r *Redactor) Contains(s string) bool {
	if s == "" || !r.mayHold(s) {
		return false
	}
	sc := getScratch()
	defer putScratch(sc)
	sc.units = appendView(sc.units[:0], s)
	sc.spans = r.appendSpans(sc, sc.spans[:0])
	return len(sc.spans) > 0
}

// mayHold reports whether s may hold anything r removes, from a quick look at its bytes:
// with no names or ids known, only numbers need looking for.
func (r *Redactor) mayHold(s string) bool {
	switch {
	case r == nil:
		return mayHoldDigits(s, nhsDigits)
	case len(r.names) > 0 || r.ids != nil:
		return true
	case !r.dobs.empty():
		return mayHoldDigits(s, dateDigits)
	}
	return mayHoldDigits(s, nhsDigits)
}

// plain reports whether r knows no identifiers.
func (r *Redactor) plain() bool {
	return r == nil || len(r.nhs)+r.ids.size()+len(r.dobs.full)+len(r.names) == 0
}

// appendSpans appends the spans of everything r removes from the view sc.units.
func (r *Redactor) appendSpans(sc *scratch, spans []span) []span {
	u := sc.units
	spans = appendNHSNumbers(spans, u)
	if r.plain() {
		return spans
	}
	spans = r.appendKnownNHS(sc, spans)
	spans = r.ids.appendSpans(u, sc, spans)
	if r.dobs.empty() && len(r.names) == 0 {
		return spans
	}
	sc.tokens = appendTokens(sc.tokens[:0], u)
	for i, t := range sc.tokens {
		switch t.class {
		case classLetter:
			if len(r.names) > 0 && t.n >= MinNameLetters {
				sc.word = t.text(u, sc.word[:0])
				if _, ok := r.names[string(sc.word)]; ok {
					spans = append(spans, span{t.first, t.last, KindName})
				}
			}
		case classDigit:
		default:
			continue
		}
		if r.dobs.empty() {
			continue
		}
		if end := r.dobs.matchAt(sc.tokens, i, u); end >= 0 {
			spans = append(spans, span{t.first, sc.tokens[end].last, KindDateOfBirth})
		}
	}
	return spans
}

// appendKnownNHS appends a span for each known NHS number found as ten digits in a row in a
// chain of digits joined by separators, wherever it starts and ends in the chain; the span
// takes the whole runs of digits the number starts and ends in.
func (r *Redactor) appendKnownNHS(sc *scratch, spans []span) []span {
	if len(r.nhs) == 0 {
		return spans
	}
	u := sc.units
	chain := sc.chain[:0]
	flush := func() {
		for i := 0; i+10 <= len(chain); {
			if d := digitsAt(u, chain[i:i+10]); !containsNHS(r.nhs, d) {
				i++
				continue
			}
			// The whole runs it is part of go with it: what is left of a run could read as a
			// number of its own to a later pass.
			first, last := int(chain[i]), int(chain[i+9])
			for first > 0 && u[first-1].class == classDigit {
				first--
			}
			for last+1 < len(u) && u[last+1].class == classDigit {
				last++
			}
			spans = append(spans, span{first, last, KindNHSNumber})
			for i < len(chain) && int(chain[i]) <= last {
				i++
			}
		}
		chain = chain[:0]
	}
	lastDigit := -1
	for i, x := range u {
		if x.class != classDigit {
			continue
		}
		if lastDigit >= 0 && lastDigit+1 < i && !joined(u, lastDigit+1, i) {
			flush()
		}
		chain = append(chain, int32(i))
		lastDigit = i
	}
	flush()
	sc.chain = chain
	return spans
}

func digitsAt(u []unit, idx []int32) (d [10]byte) {
	for j, i := range idx {
		d[j] = byte(u[i].r - '0')
	}
	return d
}

func alnum(x unit) bool { return x.class == classDigit || x.class == classLetter }
