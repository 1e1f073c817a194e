package hl7

import "strings"

// Delimiters are the separator and escape characters a message declares in
// MSH-1 and MSH-2. Every message brings its own; never assume "|^~\&".
type Delimiters struct {
	Field        byte
	Component    byte
	Repetition   byte
	Escape       byte
	Subcomponent byte
	// Truncation is the v2.7 truncation character, or 0 when MSH-2 has
	// only the four classic characters.
	Truncation byte
}

// defaultDelimiters are used when a frame could not be parsed at all.
var defaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// codec is what every accessor needs to split and unescape: the message's
// delimiters, and whether its text was decoded from ISO-8859-1 (which
// changes how \Xhh\ escapes are read). The zero codec splits nothing and
// unescapes nothing, which is exactly right for MSH-1 and MSH-2.
type codec struct {
	d      Delimiters
	latin1 bool
}

// Message is a parsed HL7 v2 message. Parse indexes its segments once; fields
// are split and unescaped only when asked for, so unused parts cost nothing.
// A Message is immutable and safe for concurrent use.
type Message struct {
	text       string
	c          codec
	segs       []Segment
	normalised bool
	segsBuf    [12]Segment // typical ADT messages fit here, saving an allocation
}

// Delimiters returns the separators the message declared in MSH-1 and MSH-2.
func (m *Message) Delimiters() Delimiters { return m.c.d }

// Text returns the message as UTF-8 with segments separated by "\r", after
// line endings were normalised and ISO-8859-1 decoded.
func (m *Message) Text() string { return m.text }

// LineEndingsNormalised reports whether the message used "\n" or "\r\n"
// between segments instead of "\r". It parsed fine; the caller may count it
// to tell the sender's interface team.
func (m *Message) LineEndingsNormalised() bool { return m.normalised }

// Latin1 reports whether the message was not valid UTF-8 and was therefore
// decoded as ISO-8859-1.
func (m *Message) Latin1() bool { return m.c.latin1 }

// Segments returns every segment with the given name, in message order.
func (m *Message) Segments(name string) []Segment {
	var out []Segment
	for _, s := range m.segs {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// First returns the first segment with the given name.
func (m *Message) First(name string) (Segment, bool) {
	return m.nthSegment(name, 1)
}

// All returns every segment in message order, Z-segments and unknown
// segments included. The slice is the caller's to keep.
func (m *Message) All() []Segment {
	return append([]Segment(nil), m.segs...)
}

func (m *Message) nthSegment(name string, n int) (Segment, bool) {
	for _, s := range m.segs {
		if s.name == name {
			if n--; n == 0 {
				return s, true
			}
		}
	}
	return Segment{}, false
}

// Segment is one line of a message, such as PID or a Z-segment. The zero
// Segment is empty: every accessor returns "".
type Segment struct {
	name string
	raw  string
	c    codec
}

// Name returns the three-character segment id, e.g. "PID".
func (s Segment) Name() string { return s.name }

// Raw returns the segment as it appears in the message, still escaped.
func (s Segment) Raw() string { return s.raw }

// Field returns field n, numbered as in the HL7 standard from 1. Fields past
// the end of a truncated segment are empty. In MSH, field 1 is the field
// separator itself and field 2 the encoding characters; both are returned
// literally, never split or unescaped.
func (s Segment) Field(n int) Field {
	if n < 1 || s.raw == "" {
		return Field{}
	}
	if s.name == "MSH" {
		switch n {
		case 1:
			return Field{raw: s.raw[3:4]}
		case 2:
			enc, _ := nth(s.raw[4:], s.c.d.Field, 0)
			return Field{raw: enc}
		}
		// "MSH|^~\&|APP": the piece after the first separator is MSH-2,
		// so MSH-n is piece n-1.
		n--
	}
	raw, _ := nth(s.raw, s.c.d.Field, n)
	return Field{raw: raw, c: s.c}
}

// NumFields returns the number of the last field present in the segment.
func (s Segment) NumFields() int {
	n := strings.Count(s.raw, string(s.c.d.Field))
	if s.name == "MSH" {
		n++
	}
	return n
}

// Field is one field of a segment, possibly repeated.
type Field struct {
	raw string
	c   codec
}

// Raw returns the field as it appears in the message, still escaped and
// with its repetitions, components and subcomponents.
func (f Field) Raw() string { return f.raw }

// Value returns the first subcomponent of the first component of the first
// repetition, unescaped: the whole value of a simple field.
func (f Field) Value() string { return f.Repetition(1).Value() }

// IsNull reports whether the field holds the HL7 null `""`, which tells the
// receiver to delete the value it has.
func (f Field) IsNull() bool { return f.raw == `""` }

// NumRepetitions returns how many repetitions the field has; 0 when empty.
func (f Field) NumRepetitions() int {
	if f.raw == "" {
		return 0
	}
	return strings.Count(f.raw, string(f.c.d.Repetition)) + 1
}

// Repetition returns repetition n, counting from 1.
func (f Field) Repetition(n int) Repetition {
	if n < 1 {
		return Repetition{}
	}
	raw, _ := nth(f.raw, f.c.d.Repetition, n-1)
	return Repetition{raw: raw, c: f.c}
}

// Repetitions returns all repetitions of the field; nil when it is empty.
func (f Field) Repetitions() []Repetition {
	if f.raw == "" {
		return nil
	}
	out := make([]Repetition, 0, f.NumRepetitions())
	for rest := f.raw; ; {
		piece, tail, more := strings.Cut(rest, string(f.c.d.Repetition))
		if f.c.d.Repetition == 0 {
			piece, more = rest, false
		}
		out = append(out, Repetition{raw: piece, c: f.c})
		if !more {
			return out
		}
		rest = tail
	}
}

// Component returns component n (from 1) of the first repetition.
func (f Field) Component(n int) Component { return f.Repetition(1).Component(n) }

// Repetition is one occurrence of a repeating field.
type Repetition struct {
	raw string
	c   codec
}

// Raw returns the repetition as it appears in the message, still escaped.
func (r Repetition) Raw() string { return r.raw }

// Value returns the first subcomponent of the first component, unescaped.
func (r Repetition) Value() string { return r.Component(1).Value() }

// NumComponents returns how many components the repetition has; 0 when empty.
func (r Repetition) NumComponents() int {
	if r.raw == "" {
		return 0
	}
	return strings.Count(r.raw, string(r.c.d.Component)) + 1
}

// Component returns component n, counting from 1.
func (r Repetition) Component(n int) Component {
	if n < 1 {
		return Component{}
	}
	raw, _ := nth(r.raw, r.c.d.Component, n-1)
	return Component{raw: raw, c: r.c}
}

// Component is one component of a field repetition.
type Component struct {
	raw string
	c   codec
}

// Raw returns the component as it appears in the message, still escaped.
func (c Component) Raw() string { return c.raw }

// Value returns the first subcomponent, unescaped. For the usual component
// without subcomponents that is the whole component.
func (c Component) Value() string { return c.Subcomponent(1) }

// NumSubcomponents returns how many subcomponents there are; 0 when empty.
func (c Component) NumSubcomponents() int {
	if c.raw == "" {
		return 0
	}
	return strings.Count(c.raw, string(c.c.d.Subcomponent)) + 1
}

// Subcomponent returns subcomponent n (from 1), unescaped.
func (c Component) Subcomponent(n int) string {
	if n < 1 {
		return ""
	}
	raw, _ := nth(c.raw, c.c.d.Subcomponent, n-1)
	return c.c.unescape(raw)
}

// nth returns piece n (from 0) of s split at sep, and whether it exists. A
// zero sep never matches, because Parse rejects NUL bytes.
func nth(s string, sep byte, n int) (string, bool) {
	for ; n > 0; n-- {
		i := strings.IndexByte(s, sep)
		if i < 0 {
			return "", false
		}
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, sep); i >= 0 {
		s = s[:i]
	}
	return s, true
}
