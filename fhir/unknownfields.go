package fhir

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir/privacy"
)

// unknownFields returns a warning for every object member of an incident document that no
// field of Incident takes, at any depth (inside patients[], agents.medications[], ...), with
// the closest known name as a suggestion, and for every member read under a name that
// matched a field only by ignoring letter case, as encoding/json matches. encoding/json
// drops unknown members without a word: "physicalHarm" would leave a patient with no harm
// recorded and nobody told (docs/mapping.md, "Nothing dropped in silence").
//
// data must be one JSON object that decoded into Incident without error. The scan follows
// the Go type, as typeProblems does, reads each key once and allocates only for a warning;
// the value of an unknown member is skipped whatever it holds, without recursion. On
// malformed input it stops early and never panics.
func unknownFields(data []byte) []Warning {
	s := fieldScanner{data: data}
	s.path = s.pathBuf[:0]
	s.skipSpace()
	s.value(reflect.TypeFor[Incident]())
	if s.unlisted > 0 {
		s.out = append(s.out, Warning{Field: "(body)", Kind: WarnUnknownField,
			Message: strconv.Itoa(s.unlisted) + " more unknown or misspelt fields not listed"})
	}
	return s.out
}

// maxFieldWarnings bounds the warnings one body gets for its field names: a body of a million
// unknown keys must cost the time to read it, not a million suggestions (docs/privacy.md,
// hostile input), and no sender needs more than the first hundred to fix its export.
const maxFieldWarnings = 100

// maxWarnedKey bounds how much of an unknown key a warning quotes.
const maxWarnedKey = 64

type fieldScanner struct {
	data []byte
	i    int
	// path is where the scan is: field names, or array indices (name ""). The Go type is a
	// few levels deep, so pathBuf holds it without allocating.
	path    []fieldSeg
	pathBuf [8]fieldSeg
	out     []Warning
	// unlisted counts the keys past maxFieldWarnings: counted, not listed.
	unlisted int
}

type fieldSeg struct {
	name  string
	index int
}

func (s *fieldScanner) skipSpace() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans the value at s.i, which should fit t.
func (s *fieldScanner) value(t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s.i >= len(s.data) {
		return
	}
	switch {
	case t.Kind() == reflect.Struct && s.data[s.i] == '{':
		s.object(jsonFieldsOf(t))
	case t.Kind() == reflect.Slice && s.data[s.i] == '[':
		s.array(t.Elem())
	default:
		s.skipValue()
	}
}

func (s *fieldScanner) object(fields *jsonFields) {
	s.i++ // {
	for {
		s.skipSpace()
		if s.i >= len(s.data) {
			return
		}
		switch s.data[s.i] {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		case '"':
		default:
			s.i = len(s.data) // malformed: stop
			return
		}
		raw := s.stringBody()
		f := fields.byName[string(raw)] // no allocation for the lookup
		if f == nil {
			f = s.notExact(raw, fields)
		}
		s.skipSpace()
		if s.i < len(s.data) && s.data[s.i] == ':' {
			s.i++
		}
		s.skipSpace()
		if f == nil {
			s.skipValue()
			continue
		}
		s.path = append(s.path, fieldSeg{name: f.name})
		s.value(f.typ)
		s.path = s.path[:len(s.path)-1]
	}
}

// notExact handles a member whose key is not exactly a field's name: it warns, and returns
// the field the key matches but for case (encoding/json reads it into that field), or nil.
// It is apart from object so that the happy path allocates nothing for keys.
func (s *fieldScanner) notExact(raw []byte, fields *jsonFields) *jsonField {
	escaped := bytes.IndexByte(raw, '\\') >= 0
	if len(s.out) >= maxFieldWarnings && !escaped {
		// Past the listed warnings, only the structure matters: which field, if any, the key
		// decodes into, found as encoding/json folds it, without allocating. A body of a
		// million unknown keys costs the time to read them (docs/privacy.md, "Hostile input").
		s.unlisted++
		return fields.lookup(raw)
	}
	key := string(raw)
	if escaped {
		_ = json.Unmarshal(s.data[s.i-len(raw)-2:s.i], &key) // valid: the document decoded
	}
	if len(s.out) >= maxFieldWarnings {
		s.unlisted++
		return foldedField(fields, key)
	}
	if f := foldedField(fields, key); f != nil {
		s.warn(key, "read as "+f.name+"; write field names exactly as documented (docs/incident.schema.json)", WarnFieldCase)
		return f
	}
	msg := "unknown field, ignored"
	if near := suggestField(key, fields); near != "" {
		msg += "; did you mean " + near + "?"
	}
	s.warn(key, msg, WarnUnknownField)
	return nil
}

func (s *fieldScanner) array(elem reflect.Type) {
	s.i++ // [
	for n := 0; ; {
		s.skipSpace()
		if s.i >= len(s.data) {
			return
		}
		switch s.data[s.i] {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		s.path = append(s.path, fieldSeg{index: n})
		s.value(elem)
		s.path = s.path[:len(s.path)-1]
		n++
		if s.i == start {
			s.i = len(s.data) // malformed: nothing was consumed
			return
		}
	}
}

// stringBody scans the string at s.i and returns its raw bytes between the quotes.
func (s *fieldScanner) stringBody() []byte {
	start := s.i + 1
	s.skipString()
	end := max(s.i-1, start)
	return s.data[start:end]
}

func (s *fieldScanner) skipString() {
	s.i++ // "
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			return
		}
		s.i++
	}
	s.i = len(s.data)
}

// skipValue skips one value of any kind and depth, iteratively.
func (s *fieldScanner) skipValue() {
	if s.i >= len(s.data) {
		return
	}
	switch s.data[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// warn adds a warning for the member key of the object at s.path.
func (s *fieldScanner) warn(key, msg string, kind WarningKind) {
	var b strings.Builder
	for _, seg := range s.path {
		if seg.name == "" {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg.name)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(quotableKey(key))
	s.out = append(s.out, Warning{Field: b.String(), Message: msg, Kind: kind})
}

// quotableKey makes a sender's key fit to repeat in a warning, which is stored in the
// delivery record and shown to operators. A key is shown when it reads as a field name: at
// most maxWarnedKey letters (of any script), digits and the marks _ - . $ @, with few
// digits, no date written with separators and no NHS number (privacy.CodeLike's rules,
// without its limit to ASCII). Anything else, a key holding a sentence, a name with a date
// of birth or an identifier, is described by its length, never quoted (docs/privacy.md).
func quotableKey(k string) string {
	if privacy.FieldNameLike(k, maxWarnedKey) {
		return k
	}
	return "[key of " + strconv.Itoa(utf8.RuneCountInString(k)) + " characters, not shown]"
}

// foldedField is the field whose name equals key but for case, as encoding/json matches a
// member that names no field exactly, or nil. Only keys that are not exact names come here.
func foldedField(fields *jsonFields, key string) *jsonField {
	for _, f := range fields.list {
		if strings.EqualFold(f.name, key) {
			return f
		}
	}
	return nil
}

// fieldAliases are names that sending systems commonly use for a field, by normalised name
// (normaliseName), which edit distance would not find.
var fieldAliases = map[string]string{
	"dob": "date_of_birth", "birthdate": "date_of_birth", "dateofbirth": "date_of_birth",
	"gender": "sex", "nhsno": "nhs_number", "nhs": "nhs_number", "mrn": "local_patient_id",
	"type": "event_type", "eventtype": "event_type", "occurred": "occurred_at",
	"drugs": "medications", "drug": "medications", "medicines": "medications",
}

// suggestField returns the field of fields whose name key most likely meant, or "": the
// same name but for case and separators ("physicalHarm", "Physical-Harm"), a known alias
// ("dob"), or the nearest name within a small edit distance ("medication", "sevrity").
func suggestField(key string, fields *jsonFields) string {
	k := normaliseName(key)
	if k == "" {
		return ""
	}
	if a, ok := fieldAliases[k]; ok {
		if _, known := fields.byName[a]; known {
			return a
		}
	}
	best, bestD := "", maxSuggestDistance(k)+1
	for _, f := range fields.list {
		n := normaliseName(f.name)
		if n == k {
			return f.name
		}
		if d := editDistance(k, n, bestD); d < bestD {
			best, bestD = f.name, d
		}
	}
	return best
}

// maxSuggestDistance is how many edits away a name may be and still be suggested: one for
// short names, where two edits make another word, up to three for long ones.
func maxSuggestDistance(k string) int {
	switch n := len(k); {
	case n <= 4:
		return 1
	case n <= 10:
		return 2
	default:
		return 3
	}
}

// normaliseName lower-cases s and drops everything but letters and digits, so that
// physicalHarm, Physical-Harm and physical_harm compare equal.
func normaliseName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// editDistance is the optimal-string-alignment distance between a and b (insertions,
// deletions, substitutions and adjacent transpositions), or limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin >= limit {
			return limit
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit)
}
