package csvdrop

import "unicode/utf8"

// rowEnd finds where one CSV row ends, reading it byte by byte as encoding/csv would (no
// LazyQuotes, no comment character): a row is whole lines, so it ends at a line feed outside
// quotes; a quote opens a quoted field only as a field's first character, and "" inside one
// is a quote; a quoted field closed by anything but the delimiter or the end of the line is
// an error, and so is a quote inside an unquoted field: either way the row then ends at the
// end of that line. Empty lines before a row are not part of it. It lets a reader skip a row
// too long to hand to encoding/csv and carry on at the next one, with memory that does not
// grow with the row.
type rowEnd struct {
	comma   []byte // the delimiter, UTF-8 encoded
	state   int
	partial int // bytes of a multi-byte delimiter matched so far
	// started is set once the row's first byte is read (empty lines before it are not).
	started bool
	// lines counts the line feeds read, the row's last one included.
	lines int
}

// rowEnd states.
const (
	reRowStart    = iota // before the row: empty lines are skipped here
	reRowStartCR         // a CR at the row's start: an empty line if a LF follows
	reFieldStart         // at the start of a field
	reUnquoted           // inside an unquoted field
	reQuoted             // inside a quoted field
	reQuoteSeen          // a quote inside a quoted field: a closing quote, or the first of ""
	reQuoteSeenCR        // a closing quote and a CR: the end of the line if a LF follows
	reSkipLine           // after a quoting error: the row ends with this line
	reDone
)

func newRowEnd(comma rune) *rowEnd {
	return &rowEnd{comma: utf8.AppendRune(nil, comma)}
}

// feed reads b and returns how many of its bytes belong to the row (up to and including the
// line feed that ends it) and whether the row ended within b.
func (e *rowEnd) feed(b []byte) (int, bool) {
	for i, x := range b {
		if e.step(x) {
			return i + 1, true
		}
	}
	return len(b), false
}

// step reads one byte and reports whether the row ended with it.
func (e *rowEnd) step(x byte) bool {
	if x == '\n' {
		e.lines++
	}
	if e.state == reRowStartCR {
		if x == '\n' {
			e.state = reRowStart // "\r\n": an empty line
			return false
		}
		e.state, e.started = reUnquoted, true // the CR was the row's first character
	}
	// A delimiter, maybe several bytes long, ends a field in the states where fields end.
	if e.state == reRowStart || e.state == reFieldStart || e.state == reUnquoted || e.state == reQuoteSeen {
		if x == e.comma[e.partial] {
			e.partial++
			if e.partial == len(e.comma) {
				e.partial, e.state, e.started = 0, reFieldStart, true
			}
			return false
		}
		if e.partial > 0 {
			// Not the delimiter after all: the bytes so far were field text (or, after a
			// closing quote, an error), and x is read in that light.
			e.partial = 0
			if e.state == reQuoteSeen {
				e.state = reSkipLine
			} else {
				e.state, e.started = reUnquoted, true
			}
			if x == e.comma[0] {
				e.partial = 1
				return false
			}
		}
	}
	switch e.state {
	case reRowStart:
		switch x {
		case '\n':
			return false // an empty line
		case '\r':
			e.state = reRowStartCR
			return false
		}
		e.started = true
		e.state = reFieldStart
		return e.step1(x)
	default:
		return e.step1(x)
	}
}

// step1 reads x in a state inside the row.
func (e *rowEnd) step1(x byte) bool {
	switch e.state {
	case reFieldStart:
		switch x {
		case '\n':
			e.state = reDone
		case '"':
			e.state = reQuoted
		default:
			e.state = reUnquoted
		}
	case reUnquoted:
		switch x {
		case '\n':
			e.state = reDone
		case '"':
			e.state = reSkipLine // a bare quote: an error, the rest of the line is the row's
		}
	case reQuoted:
		if x == '"' {
			e.state = reQuoteSeen
		}
	case reQuoteSeen:
		switch x {
		case '"':
			e.state = reQuoted // "" is a quote
		case '\n':
			e.state = reDone
		case '\r':
			e.state = reQuoteSeenCR
		default:
			e.state = reSkipLine // text after a closing quote: an error
		}
	case reQuoteSeenCR:
		if x == '\n' {
			e.state = reDone
		} else {
			e.state = reSkipLine
		}
	case reSkipLine:
		if x == '\n' {
			e.state = reDone
		}
	}
	return e.state == reDone
}
