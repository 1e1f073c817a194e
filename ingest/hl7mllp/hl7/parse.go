package hl7

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Parse parses one HL7 v2 message. It is written for v2.3 to v2.5 and reads
// later versions too. It copies b, so the caller may reuse b afterwards.
//
// What it accepts and why:
//   - Segments end in "\r" as the standard says; "\n" and "\r\n" are accepted
//     too and normalised, and LineEndingsNormalised reports it. Blank lines
//     are skipped.
//   - The delimiters are read from MSH-1 and MSH-2 (four characters, or five
//     with the v2.7 truncation character). They must be distinct printable
//     ASCII punctuation.
//   - Text that is not valid UTF-8 is decoded as ISO-8859-1, the usual
//     legacy EPR encoding, unless MSH-18 declares UTF-8: then the sender is
//     broken and the message is refused. Valid UTF-8 is taken as UTF-8 even
//     when MSH-18 says 8859/1, because senders often misdeclare it and real
//     Latin-1 text is almost never valid UTF-8. Parse is lenient about
//     undeclared 8-bit text so that it can read any message once stored; a
//     listener checks a new message's bytes against its character set with
//     CheckEncoding first.
//   - Control bytes other than tab, CR and LF mean binary data, not HL7, and
//     are refused.
//   - Segment ids must be three characters, A-Z then A-Z or 0-9. Exactly one
//     MSH, first; batches (FHS/BHS) are not supported.
//
// Every error is a *ParseError.
func Parse(b []byte) (*Message, error) {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil, &ParseError{Reason: "empty message"}
	}
	if len(b) < 4 || string(b[:3]) != "MSH" {
		return nil, &ParseError{Segment: "MSH", Reason: "no MSH segment"}
	}
	for _, x := range b {
		if isControl(x) {
			return nil, &ParseError{Reason: "control byte in message: binary data is not HL7"}
		}
	}
	d, err := readDelimiters(b)
	if err != nil {
		return nil, err
	}
	m := &Message{c: codec{d: d}}
	valid := utf8.Valid(b)
	if !valid && declaresUTF8(b, d) {
		return nil, &ParseError{Reason: "invalid UTF-8 although MSH-18 declares UTF-8"}
	}
	m.c.latin1 = !valid
	m.normalised = bytes.IndexByte(b, '\n') >= 0
	m.text = decodeText(b, m.c.latin1)
	if err := m.index(); err != nil {
		return nil, err
	}
	return m, nil
}

// readDelimiters reads MSH-1 and MSH-2 from the start of a message that
// begins with "MSH".
func readDelimiters(b []byte) (Delimiters, error) {
	fs := b[3]
	enc := b[4:]
	for i, x := range enc {
		if x == fs || x == '\r' || x == '\n' {
			enc = enc[:i]
			break
		}
	}
	if !isDelimiter(fs) {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 1, Reason: "field separator must be printable ASCII punctuation"}
	}
	if len(enc) != 4 && len(enc) != 5 {
		return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Reason: "encoding characters must be 4 or 5 characters"}
	}
	seen := [6]byte{fs}
	for i, x := range enc {
		if !isDelimiter(x) {
			return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Reason: "encoding characters must be printable ASCII punctuation"}
		}
		if bytes.IndexByte(seen[:i+1], x) >= 0 {
			return Delimiters{}, &ParseError{Segment: "MSH", Field: 2, Reason: "delimiter characters must be distinct"}
		}
		seen[i+1] = x
	}
	d := Delimiters{Field: fs, Component: enc[0], Repetition: enc[1], Escape: enc[2], Subcomponent: enc[3]}
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	return d, nil
}

func isDelimiter(x byte) bool {
	return x > ' ' && x < 0x7f &&
		!(x >= '0' && x <= '9') && !(x >= 'A' && x <= 'Z') && !(x >= 'a' && x <= 'z')
}

// declaresUTF8 reports whether MSH-18 names UTF-8. It works on raw bytes
// because it must run before the text encoding is known.
func declaresUTF8(b []byte, d Delimiters) bool {
	return strings.Contains(strings.ToUpper(declaredCharset(b, d)), "UTF-8")
}

// decodeText converts the frame to the message's text in one copy: Latin-1
// to UTF-8 when needed, and every line ending to "\r".
func decodeText(b []byte, latin1 bool) string {
	if !latin1 && bytes.IndexByte(b, '\n') < 0 {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for i := 0; i < len(b); i++ {
		switch x := b[i]; {
		case x == '\r' && i+1 < len(b) && b[i+1] == '\n':
			sb.WriteByte('\r')
			i++
		case x == '\n':
			sb.WriteByte('\r')
		case x >= utf8.RuneSelf && latin1:
			sb.WriteRune(rune(x))
		default:
			sb.WriteByte(x)
		}
	}
	return sb.String()
}

// index splits the text into segments and checks their ids.
func (m *Message) index() error {
	m.segs = m.segsBuf[:0]
	rest := m.text
	for line := 1; rest != ""; line++ {
		s, tail, _ := strings.Cut(rest, "\r")
		rest = tail
		if strings.TrimLeft(s, " \t") == "" {
			continue
		}
		if !validSegmentID(s, m.c.d.Field) {
			return &ParseError{Line: line, Reason: "invalid segment id"}
		}
		name := s[:3]
		if name == "MSH" && len(m.segs) > 0 {
			return &ParseError{Segment: "MSH", Line: line, Reason: "more than one MSH segment"}
		}
		m.segs = append(m.segs, Segment{name: name, raw: s, c: m.c})
	}
	return nil
}

func validSegmentID(s string, fs byte) bool {
	if len(s) < 3 || (len(s) > 3 && s[3] != fs) {
		return false
	}
	if s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 3; i++ {
		if !(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}
