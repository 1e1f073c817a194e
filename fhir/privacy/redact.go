package privacy

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is a kind of patient identifier that redaction removes from free text. Its String
// is the label value of the redaction metric.
type Kind uint8

const (
	// KindNHSNumber is any NHS-number-shaped string (ten digits passing Modulus 11, see
	// RedactText), and any NHS number known for the incident.
	KindNHSNumber Kind = iota
	// KindLocalID is a local patient id (an MRN, a hospital number) known for the incident.
	KindLocalID
	// KindDateOfBirth is a date of birth known for the incident, in a common written form.
	KindDateOfBirth
	// KindName is a family or given name known for the incident.
	KindName
	numKinds
)

var kindNames = [numKinds]string{"nhs_number", "local_patient_id", "date_of_birth", "name"}

// String returns the kind's metric label: nhs_number, local_patient_id, date_of_birth or name.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Kinds returns every Kind, in a fixed order, for a metric's label values.
func Kinds() []Kind { return []Kind{KindNHSNumber, KindLocalID, KindDateOfBirth, KindName} }

// Counts is how many identifiers of each kind were redacted, indexed by Kind.
type Counts [numKinds]int

// Total is the sum over all kinds.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	for k, v := range o {
		c[k] += v
	}
}

// Placeholder replaces every NHS number that RedactText finds. Like every placeholder, it
// holds no digit, and the redactor reads placeholders as opaque, so that redacted text never
// yields a new match, whatever names the redactor is told.
const Placeholder = "[REDACTED NHS NUMBER]"

// placeholders are what replaces each kind; shortPlaceholders are used instead when the full
// ones would make a text longer than MaxText (see render). A short placeholder is no longer
// than the shortest text its kind is found in, except for two-letter names.
var (
	placeholders      = [numKinds]string{Placeholder, "[REDACTED PATIENT ID]", "[REDACTED DATE OF BIRTH]", "[REDACTED NAME]"}
	shortPlaceholders = [numKinds]string{"[NHS]", "[ID]", "[DOB]", "[N]"}
)

// placeholderAt returns the length of the placeholder at s[i:], or 0.
func placeholderAt(s string, i int) int {
	rest := s[i:]
	for k := range numKinds {
		if strings.HasPrefix(rest, placeholders[k]) {
			return len(placeholders[k])
		}
		if strings.HasPrefix(rest, shortPlaceholders[k]) {
			return len(shortPlaceholders[k])
		}
	}
	return 0
}

// MaxText is the most characters free text may have in a payload: LFPSE's limit on
// AdverseEvent.description (taxonomy.MaxDescription), which psgw applies to every free-text
// field, as the ingest API does. Redaction never makes a text longer than MaxText, or than
// it was (see render).
const MaxText = 32000

// RedactText replaces every NHS number in free text with Placeholder and returns the new
// text and how many it replaced. It knows nothing of the incident; Redactor.Text also
// removes the identifiers known for it.
//
// The text is read through its normalised view (see appendView): any decimal digit counts,
// in any script, full-width or superscript, and characters that do not show are skipped. A
// number is ten digits that pass the Modulus 11 check (ValidNHSNumber), written as one run
// of digits or as several runs joined by separators: any run of spaces of any kind, line
// breaks, hyphens and dashes, brackets, and / _ , . (see isSeparator). So "943 476 5919",
// "(943) 476 5919", "943  476\n5919", "999 526 018 2", "943/476/5919", "９４３4765919" and
// "943\u00ad476\u200b5919" are all found.
//
// A run of digits is never split: a longer run (a 12-digit number, a dm+d id) is left
// alone, and so is a shorter run glued to one ("1943 476 5919"), since a ten-digit window in
// a longer number would be a false positive one time in eleven. Of several runs joined by
// separators, the ten digits are the runs that end with the latest run to complete ten
// ("bed 4 943 476 5919" keeps "bed 4"); the search goes on after each number found.
//
// What is replaced are the original characters from the first digit to the last (with an
// opening bracket when the number's closing one is in it); the rest of the text is left
// byte for byte. When nothing is found, s is returned as is, without allocating.
func RedactText(s string) (out string, count int) {
	out, c := (*Redactor)(nil).Text(s)
	return out, c[KindNHSNumber]
}

// ContainsNHSNumber reports whether RedactText would redact anything in s.
func ContainsNHSNumber(s string) bool {
	if !mayHoldDigits(s, nhsDigits) {
		return false
	}
	sc := getScratch()
	defer putScratch(sc)
	sc.units = appendView(sc.units[:0], s)
	sc.spans = appendNHSNumbers(sc.spans[:0], sc.units)
	return len(sc.spans) > 0
}

// Digits the shortest spelling of each kind of number holds: ten for an NHS number, four
// for a date of birth ("1/3/75").
const (
	nhsDigits  = 10
	dateDigits = 4
)

// mayHoldDigits reports whether s may hold a number of at least min digits: it has a
// character that is not ASCII (which may be a digit of another script, or a superscript), or
// at least min ASCII digits. Most strings of a payload (urls, codes) are answered here,
// without building the view.
func mayHoldDigits(s string, min int) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return true
		case '0' <= c && c <= '9':
			n++
		}
	}
	return n >= min
}

// span is a found identifier: units first to last of the view, or, once rendered, bytes
// [first, last) of the text.
type span struct {
	first, last int
	kind        Kind
}

// scratch holds the buffers of one redaction, pooled so that redacting text in which nothing
// is found allocates nothing.
type scratch struct {
	units  []unit
	tokens []tok
	spans  []span
	chain  []int32 // unit indexes of the digits of a chain (known NHS numbers)
	word   []byte
}

// scratches keeps a few scratch buffers for reuse. It is a channel rather than a sync.Pool
// because a pool drops items at random under the race detector, where the allocation tests
// (TestRedactTextNoMatchDoesNotAllocate, fhir's TestPrepareAllocations) would then fail.
var scratches = make(chan *scratch, 16)

func getScratch() *scratch {
	select {
	case sc := <-scratches:
		return sc
	default:
		return new(scratch)
	}
}

// putScratch keeps sc for reuse, unless a very long text made its buffers large or enough
// are kept already.
func putScratch(sc *scratch) {
	if cap(sc.units) > 1<<16 {
		return
	}
	select {
	case scratches <- sc:
	default:
	}
}

// render replaces spans (units of u, the view of s) with their placeholders and counts them
// by kind. Overlapping spans are merged into one, of the first one's kind.
//
// A placeholder never makes the text longer than limit = max(MaxText, characters of s). If
// the full placeholders would, the short ones are used; if even they would (only many
// two-letter names can), the text is cut to limit characters ending in "…", at the start of
// the word or number the cut would fall in, so that the cut can never make a new
// identifier out of part of one.
func render(s string, u []unit, spans []span) (string, Counts) {
	var c Counts
	if len(spans) == 0 {
		return s, c
	}
	merged := mergeSpans(s, u, spans)
	inChars := utf8.RuneCountInString(s)
	limit := max(MaxText, inChars)
	full, short := inChars, inChars
	for _, sp := range merged {
		c[sp.kind]++
		n := utf8.RuneCountInString(s[sp.first:sp.last])
		full += len(placeholders[sp.kind]) - n
		short += len(shortPlaceholders[sp.kind]) - n
	}
	switch {
	case full <= limit:
		return replace(s, merged, &placeholders), c
	case short <= limit:
		return replace(s, merged, &shortPlaceholders), c
	}
	return cut(replace(s, merged, &shortPlaceholders), limit), c
}

// mergeSpans turns spans of units of u, the view of s, into spans of bytes of s (byteSpan),
// in order, overlapping ones merged into one of the first one's kind. It reuses spans.
func mergeSpans(s string, u []unit, spans []span) []span {
	if len(spans) == 0 {
		return spans
	}
	for i := range spans {
		spans[i].first, spans[i].last = byteSpan(s, u, spans[i].first, spans[i].last)
	}
	slices.SortFunc(spans, func(a, b span) int { return a.first - b.first })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		if prev := &merged[len(merged)-1]; sp.first < prev.last {
			prev.last = max(prev.last, sp.last)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// byteSpan returns the bytes of s that units first to last of u come from, with the
// characters that do not show right before and after them (and marks right after): a bidi
// override or isolate around a number goes with it, rather than stay to turn the
// placeholder around.
func byteSpan(s string, u []unit, first, last int) (start, end int) {
	start, end = int(u[first].start), int(u[last].end)
	lo, hi := 0, len(s)
	if first > 0 {
		lo = int(u[first-1].end)
	}
	if last+1 < len(u) {
		hi = int(u[last+1].start)
	}
	for start > lo {
		r, w := utf8.DecodeLastRuneInString(s[lo:start])
		if !Invisible(r) {
			break
		}
		start -= w
	}
	for end < hi {
		r, w := utf8.DecodeRuneInString(s[end:hi])
		if !Invisible(r) && !unicode.In(r, unicode.Mn, unicode.Me) {
			break
		}
		end += w
	}
	return start, end
}

func replace(s string, spans []span, with *[numKinds]string) string {
	var b strings.Builder
	b.Grow(len(s) + len(spans)*len(placeholders[KindDateOfBirth]))
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.first])
		b.WriteString(with[sp.kind])
		last = sp.last
	}
	b.WriteString(s[last:])
	return b.String()
}

// cut shortens s to at most limit characters, the last one "…", cutting before the word
// or number that the limit falls in.
func cut(s string, limit int) string {
	end, n := 0, 0
	for end < len(s) && n < limit-1 {
		_, w := utf8.DecodeRuneInString(s[end:])
		end += w
		n++
	}
	// Never within a placeholder: a part of one is text to a later pass.
	for j := max(0, end-len(placeholders[KindDateOfBirth])); j < end; j++ {
		if n := placeholderAt(s, j); n > 0 && j+n > end {
			end = j
			break
		}
	}
	for end > 0 && end < len(s) {
		before, _ := utf8.DecodeLastRuneInString(s[:end])
		at, _ := utf8.DecodeRuneInString(s[end:])
		if !wordRune(before) || !wordRune(at) {
			break
		}
		_, w := utf8.DecodeLastRuneInString(s[:end])
		end -= w
	}
	return s[:end] + "…"
}

// wordRune reports whether r may be part of a word or number of the view: a letter, a digit
// or other number, a mark, or a character that does not show.
func wordRune(r rune) bool {
	return unicode.In(r, unicode.L, unicode.N, unicode.M) || Invisible(r)
}
