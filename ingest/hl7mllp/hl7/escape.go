package hl7

import (
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// Decode decodes the HL7 escape sequences in s: \F\ \S\ \T\ \R\ \E\ (the
// delimiters), \P\ (the truncation character, when declared), \.br\ (a line
// break, returned as "\n") and \Xhh..\ (hex bytes, read as UTF-8 when they
// form it and as ISO-8859-1 otherwise). Unknown or malformed sequences, and
// hex that would produce control bytes, are kept literally, so a stray
// escape character in sloppy data survives unchanged.
func (d Delimiters) Decode(s string) string { return codec{d: d}.unescape(s) }

func (c codec) unescape(s string) string {
	e := c.d.Escape
	if e == 0 || strings.IndexByte(s, e) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, e)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, e)
		if j < 0 {
			b.WriteByte(e)
			b.WriteString(s)
			return b.String()
		}
		if seq := s[:j]; !c.writeEscape(&b, seq) {
			b.WriteByte(e)
			b.WriteString(seq)
			b.WriteByte(e)
		}
		s = s[j+1:]
	}
}

// writeEscape writes the meaning of one escape sequence and reports whether
// it knew it.
func (c codec) writeEscape(b *strings.Builder, seq string) bool {
	d := c.d
	switch seq {
	case "F":
		b.WriteByte(d.Field)
	case "S":
		b.WriteByte(d.Component)
	case "T":
		b.WriteByte(d.Subcomponent)
	case "R":
		b.WriteByte(d.Repetition)
	case "E":
		b.WriteByte(d.Escape)
	case "P":
		if d.Truncation == 0 {
			return false
		}
		b.WriteByte(d.Truncation)
	case ".br":
		b.WriteByte('\n')
	default:
		return c.writeHex(b, seq)
	}
	return true
}

func (c codec) writeHex(b *strings.Builder, seq string) bool {
	if len(seq) < 3 || seq[0] != 'X' || len(seq)%2 == 0 {
		return false
	}
	raw, err := hex.DecodeString(seq[1:])
	if err != nil {
		return false
	}
	for _, x := range raw {
		if isControl(x) {
			return false
		}
	}
	if !c.latin1 && utf8.Valid(raw) {
		b.Write(raw)
		return true
	}
	for _, x := range raw {
		b.WriteRune(rune(x))
	}
	return true
}

// Encode escapes s for use as one field, component or subcomponent value:
// every delimiter becomes its escape sequence, line breaks become \.br\ and
// other control characters except tab become spaces. Whatever s holds, the
// result cannot change the structure of the message it is put in.
func (d Delimiters) Encode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	esc := func(code string) {
		b.WriteByte(d.Escape)
		b.WriteString(code)
		b.WriteByte(d.Escape)
	}
	for i := 0; i < len(s); i++ {
		switch x := s[i]; {
		case x == d.Escape:
			esc("E")
		case x == d.Field:
			esc("F")
		case x == d.Component:
			esc("S")
		case x == d.Subcomponent:
			esc("T")
		case x == d.Repetition:
			esc("R")
		case x == d.Truncation && x != 0:
			esc("P")
		case x == '\r' && i+1 < len(s) && s[i+1] == '\n':
			// one line break, not two
		case x == '\r' || x == '\n':
			esc(".br")
		case isControl(x):
			b.WriteByte(' ')
		default:
			b.WriteByte(x)
		}
	}
	return b.String()
}

// isControl reports the bytes that have no place in HL7 text: C0 controls
// other than tab, CR and LF, and DEL.
func isControl(x byte) bool {
	return (x < 0x20 && x != '\t' && x != '\r' && x != '\n') || x == 0x7f
}
