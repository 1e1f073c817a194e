package fhir

import (
	"strconv"
	"strings"
)

// duplicateKey reports the path of the first object key that appears twice in the same JSON
// object ("patients[0].sex"), or "" when there is none. encoding/json silently keeps the last
// of two equal keys, so {"source":"a","source":"b"} would be read as source b while the
// sending system may believe it sent a; such a body is ambiguous and is refused instead.
// It never fails on malformed input: it stops, and the decoder reports the syntax error.
func duplicateKey(data []byte) string {
	s := dupScanner{data: data}
	s.skipSpace()
	if !s.value() {
		return ""
	}
	var b strings.Builder
	for _, seg := range s.path {
		if seg.index >= 0 {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
			continue
		}
		key := s.key(seg.start)
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key)
	}
	return b.String()
}

type dupScanner struct {
	data  []byte
	i     int
	depth int
	// path is where the scan is; it is only turned into a string when a duplicate is found,
	// so the common case builds nothing.
	path []pathSeg
	// folded holds the keys of the objects being scanned, case-folded, one after another;
	// seen holds where each is in folded, the innermost object's last. Both are reused from
	// object to object, so checking a key allocates nothing.
	folded []byte
	seen   []foldedKey
}

type pathSeg struct {
	start int // an object key's opening quote in data
	index int // an array index, or -1 for an object key
}

type foldedKey struct{ from, to int }

// maxDupDepth bounds the recursion; encoding/json refuses deeper documents anyway.
const maxDupDepth = 10000

func (s *dupScanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value and reports whether it holds a duplicate key, leaving s.path at it.
// On malformed input it moves s.i to the end.
func (s *dupScanner) value() bool {
	if s.i >= len(s.data) {
		return false
	}
	switch s.data[s.i] {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		if _, ok := s.skipStr(); !ok {
			s.i = len(s.data)
		}
		return false
	default:
		// A number, true, false or null: everything up to the next delimiter.
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return false
			}
			s.i++
		}
		return false
	}
}

func (s *dupScanner) object() bool {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxDupDepth {
		s.i = len(s.data)
		return false
	}
	s.i++ // '{'
	// This object's keys are seen[base:], in folded[foldBase:].
	base, foldBase := len(s.seen), len(s.folded)
	defer func() { s.seen, s.folded = s.seen[:base], s.folded[:foldBase] }()
	for {
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		if s.data[s.i] == '}' {
			s.i++
			return false
		}
		if s.data[s.i] != '"' {
			s.i = len(s.data)
			return false
		}
		start := s.i
		escaped, ok := s.skipStr()
		if !ok {
			s.i = len(s.data)
			return false
		}
		s.path = append(s.path, pathSeg{start: start, index: -1})
		// The decoder matches keys to fields without regard to case, so "Source" and
		// "source" land in the same field.
		k := s.fold(start, escaped)
		for _, o := range s.seen[base:] {
			if string(s.folded[o.from:o.to]) == string(s.folded[k.from:k.to]) {
				return true
			}
		}
		s.seen = append(s.seen, k)
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			s.i = len(s.data)
			return false
		}
		s.i++
		s.skipSpace()
		if s.value() {
			return true
		}
		s.path = s.path[:len(s.path)-1]
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		if s.data[s.i] == ',' {
			s.i++
			continue
		}
		if s.data[s.i] != '}' {
			s.i = len(s.data)
			return false
		}
	}
}

// fold appends the key whose string starts at start to s.folded, as strings.ToLower of the
// unescaped key, and returns where it is. A key of plain ASCII, the usual case, is folded
// in place without building a string.
func (s *dupScanner) fold(start int, escaped bool) foldedKey {
	from := len(s.folded)
	raw := s.data[start+1 : s.i-1]
	if !escaped && isASCII(raw) {
		for _, c := range raw {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			s.folded = append(s.folded, c)
		}
	} else {
		s.folded = append(s.folded, strings.ToLower(s.key(start))...)
	}
	return foldedKey{from, len(s.folded)}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func (s *dupScanner) array() bool {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > maxDupDepth {
		s.i = len(s.data)
		return false
	}
	s.i++ // '['
	for n := 0; ; n++ {
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		if s.data[s.i] == ']' {
			s.i++
			return false
		}
		s.path = append(s.path, pathSeg{index: n})
		if s.value() {
			return true
		}
		s.path = s.path[:len(s.path)-1]
		s.skipSpace()
		if s.i >= len(s.data) {
			return false
		}
		if s.data[s.i] == ',' {
			s.i++
			continue
		}
		if s.data[s.i] != ']' {
			s.i = len(s.data)
			return false
		}
	}
}

// skipStr moves past the JSON string at s.i and reports whether it holds an escape.
func (s *dupScanner) skipStr() (escaped, ok bool) {
	s.i++ // '"'
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			return escaped, true
		}
		s.i++
	}
	return escaped, false
}

// key returns the string whose opening quote is at start, unescaped, so that "a" and
// "\u0061" are the same key, as they are to the decoder.
func (s *dupScanner) key(start int) string {
	t := dupScanner{data: s.data, i: start}
	escaped, _ := t.skipStr()
	raw := string(s.data[start+1 : t.i-1])
	if !escaped {
		return raw
	}
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(raw, `\/`, `/`) + `"`)
	if err != nil {
		return raw
	}
	return u
}
