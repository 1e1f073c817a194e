package hl7

import (
	"errors"
	"strings"
)

var errBadPath = errors.New("hl7: malformed terse path")

// Get returns the unescaped value at a terse path, or "" when the message has
// nothing there or the path is malformed. Positions count from 1 as in the
// HL7 standard:
//
//	PID-3         first repetition, component 1, subcomponent 1 of PID-3
//	PID-5-2       component 2 of PID-5
//	PID-3(2)-4    component 4 of the second repetition of PID-3
//	PID-3-4-2     subcomponent 2 of component 4
//	OBX(2)-5      PID-5 of the second OBX segment
//
// Positions not given default to 1, so Get always returns one leaf value.
// Use Lookup to tell a malformed path from an empty value.
func (m *Message) Get(path string) string {
	v, _ := m.Lookup(path)
	return v
}

// Lookup is Get with an error for a malformed path.
func (m *Message) Lookup(path string) (string, error) {
	p, ok := parsePath(path)
	if !ok {
		return "", errBadPath
	}
	seg, ok := m.nthSegment(p.segment, p.segRep)
	if !ok {
		return "", nil
	}
	return seg.Field(p.field).Repetition(p.fieldRep).Component(p.component).Subcomponent(p.sub), nil
}

type terse struct {
	segment                                 string
	segRep, field, fieldRep, component, sub int
}

func parsePath(s string) (terse, bool) {
	p := terse{segRep: 1, fieldRep: 1, component: 1, sub: 1}
	if len(s) < 5 || !validSegmentID(s[:3], 0) {
		return p, false
	}
	p.segment, s = s[:3], s[3:]
	var ok bool
	if p.segRep, s, ok = optionalIndex(s, 1); !ok {
		return p, false
	}
	if p.field, s, ok = dashNumber(s); !ok {
		return p, false
	}
	if p.fieldRep, s, ok = optionalIndex(s, 1); !ok {
		return p, false
	}
	if s != "" {
		if p.component, s, ok = dashNumber(s); !ok {
			return p, false
		}
	}
	if s != "" {
		if p.sub, s, ok = dashNumber(s); !ok {
			return p, false
		}
	}
	return p, s == ""
}

// optionalIndex reads "(n)" if s starts with it.
func optionalIndex(s string, def int) (int, string, bool) {
	if !strings.HasPrefix(s, "(") {
		return def, s, true
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return 0, s, false
	}
	n, ok := positive(s[1:end])
	return n, s[end+1:], ok
}

// dashNumber reads "-n".
func dashNumber(s string) (int, string, bool) {
	if !strings.HasPrefix(s, "-") {
		return 0, s, false
	}
	s = s[1:]
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, ok := positive(s[:i])
	return n, s[i:], ok
}

func positive(s string) (int, bool) {
	if s == "" || len(s) > 6 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n > 0
}
