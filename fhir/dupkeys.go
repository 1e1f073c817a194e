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
		if seg.key == "" && seg.index >= 0 {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg.key)
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
}

type pathSeg struct {
	key   string
	index int // -1 for an object key
}

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
		if _, ok := s.str(); !ok {
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
	var seen map[string]bool
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
		key, ok := s.str()
		if !ok {
			s.i = len(s.data)
			return false
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		s.path = append(s.path, pathSeg{key: key, index: -1})
		// The decoder matches keys to fields without regard to case, so "Source" and
		// "source" land in the same field.
		folded := strings.ToLower(key)
		if seen[folded] {
			return true
		}
		seen[folded] = true
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

// str reads a JSON string at s.i and returns it unescaped, so that "a" and "\u0061" are the
// same key, as they are to the decoder.
func (s *dupScanner) str() (string, bool) {
	start := s.i
	s.i++ // '"'
	escaped := false
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			raw := string(s.data[start+1 : s.i-1])
			if !escaped {
				return raw, true
			}
			u, err := strconv.Unquote(`"` + strings.ReplaceAll(raw, `\/`, `/`) + `"`)
			if err != nil {
				return raw, true
			}
			return u, true
		}
		s.i++
	}
	return "", false
}
