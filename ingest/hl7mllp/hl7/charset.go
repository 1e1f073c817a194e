package hl7

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Character sets, as MSH-18 names them (HL7 table 0211), that CheckEncoding knows.
const (
	// CharsetASCII is 7-bit ASCII: HL7 v2's default when MSH-18 is empty.
	CharsetASCII = "ASCII"
	// CharsetLatin1 is ISO 8859-1, which many UK EPRs send, often without declaring it.
	CharsetLatin1 = "8859/1"
	// CharsetUTF8 is UTF-8.
	CharsetUTF8 = "UNICODE UTF-8"
)

// NormalizeCharset maps a character set's name, as MSH-18 or a configuration gives it, to
// CharsetASCII, CharsetLatin1 or CharsetUTF8, and reports whether it is one of them. Case and
// surrounding white space are ignored; the table 0211 aliases ISO IR6, ISO IR100 and ISO IR192
// are understood, and so are the everyday names US-ASCII, ISO-8859-1, Latin-1 and UTF-8.
func NormalizeCharset(name string) (string, bool) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "ASCII", "US-ASCII", "ISO IR6":
		return CharsetASCII, true
	case "8859/1", "ISO IR100", "ISO-8859-1", "ISO8859-1", "LATIN-1", "LATIN1":
		return CharsetLatin1, true
	case "UNICODE UTF-8", "UTF-8", "UTF8", "ISO IR192":
		return CharsetUTF8, true
	}
	return "", false
}

// CheckEncoding checks a raw message's bytes against the character set its MSH-18 declares
// or, when MSH-18 is empty, against def (a name NormalizeCharset knows; HL7 v2 itself says
// ASCII). It returns a *ParseError when a byte is not valid in that character set, or when
// MSH-18 declares a character set psgw cannot read and the message is not plain ASCII (which
// reads the same in all of them). The error names the character set, where it came from and
// the offending byte's position and segment, never its value. A message whose delimiters
// cannot be read is left to Parse to refuse.
//
// It does not change how Parse decodes text: Parse reads valid UTF-8 as UTF-8 and anything
// else as ISO 8859-1, which is right for every message CheckEncoding lets through.
func CheckEncoding(raw []byte, def string) error {
	for len(raw) > 0 && (raw[0] == '\r' || raw[0] == '\n') {
		raw = raw[1:]
	}
	if len(raw) < 4 || string(raw[:3]) != "MSH" {
		return nil
	}
	d, err := readDelimiters(raw)
	if err != nil {
		return nil
	}
	declared := strings.TrimSpace(declaredCharset(raw, d))
	name := declared
	if declared == "" {
		name = def
	}
	charset, known := NormalizeCharset(name)
	bad := -1
	switch {
	case !known:
		if i := firstNonASCII(raw); i >= 0 {
			what := "MSH-18 declares " + quoteASCII(declared)
			if declared == "" {
				what = "MSH-18 is empty and the default character set (mllp.default_charset) is " + quoteASCII(def)
			}
			return encodingError(raw, i, "not ASCII and "+what+", a character set psgw does not read; send "+
				CharsetASCII+", "+CharsetLatin1+" or "+CharsetUTF8)
		}
		return nil
	case charset == CharsetASCII:
		bad = firstNonASCII(raw)
	case charset == CharsetUTF8:
		bad = firstInvalidUTF8(raw)
	}
	if bad < 0 {
		return nil
	}
	what := "ASCII"
	if charset == CharsetUTF8 {
		what = "valid UTF-8"
	}
	if declared != "" {
		return encodingError(raw, bad, "not "+what+", which MSH-18 declares")
	}
	return encodingError(raw, bad, "not "+what+" (MSH-18 is empty, so the default character set "+charset+
		" applies: mllp.default_charset; HL7 v2 says ASCII)")
}

// declaredCharset returns MSH-18's first component, raw. It works on bytes because it runs
// before the text encoding is known.
func declaredCharset(b []byte, d Delimiters) string {
	line := b
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	// MSH-n is piece n-1 when splitting MSH at the field separator.
	v, _ := nth(string(line), d.Field, 17)
	v, _ = nth(v, d.Repetition, 0)
	v, _ = nth(v, d.Component, 0)
	return v
}

func firstNonASCII(b []byte) int {
	for i, x := range b {
		if x >= utf8.RuneSelf {
			return i
		}
	}
	return -1
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// encodingError reports byte i of raw: its offset and the segment holding it, whose id is
// three ASCII letters or digits when the message is HL7 at all.
func encodingError(raw []byte, i int, why string) error {
	start := bytes.LastIndexAny(raw[:i], "\r\n") + 1
	line := 1
	for j := 0; j < start; j++ {
		if raw[j] == '\n' || (raw[j] == '\r' && (j+1 == len(raw) || raw[j+1] != '\n')) {
			line++
		}
	}
	seg := ""
	if start+3 <= len(raw) && isSegmentID(raw[start:start+3]) {
		seg = string(raw[start : start+3])
	}
	return &ParseError{Segment: seg, Line: line, Reason: "byte " + strconv.Itoa(i+1) + " is " + why}
}

func isSegmentID(b []byte) bool {
	for j, x := range b {
		if !(x >= 'A' && x <= 'Z') && !(j > 0 && x >= '0' && x <= '9') {
			return false
		}
	}
	return true
}

// quoteASCII quotes s for a reason, keeping only printable ASCII: MSH-18 is a code, but the
// bytes there are the sender's.
func quoteASCII(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 40; i++ {
		if c := s[i]; c >= ' ' && c < 0x7f && c != '"' {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return `"` + b.String() + `"`
}
