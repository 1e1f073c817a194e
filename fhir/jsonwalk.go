package fhir

import (
	"hash/maphash"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir/privacy"
)

// bodyWalk walks a JSON document once, byte by byte, for the checks ParseIncident makes
// before and after decoding it: duplicate keys (duplicateKey), text that mixes encodings
// (encodingProblems) and values of the wrong type (typeProblems). Each is one pass in time
// linear in the body, with no decoded copy of the document: a request may carry 16 MiB and
// a million keys, and must cost the gateway well under two seconds (docs/privacy.md,
// "Hostile input"). The path is kept as a stack of offsets and only written out for a
// problem, so a clean body builds no strings.
//
// It never fails on malformed input: it stops there (bad), and the decoder reports the
// syntax error.
type bodyWalk struct {
	data  []byte
	i     int
	depth int
	path  []pathSeg
	bad   bool // malformed: the walk stopped before the end of the document

	// dups enables the duplicate-key check; it stops the walk at the first one (dupFound).
	dups     bool
	dupFound bool
	folded   []byte      // the folded keys of the open objects, one after another
	seen     []foldedKey // where each is in folded, the innermost object's last
	seed     maphash.Seed

	// enc enables the encoding check, which collects encProbs.
	enc      bool
	encProbs []Problem
	scratch  []byte // an unescaped string, reused

	// types enables the type check against Incident, which collects typeProbs (at most
	// maxTypeProblems; typeMore says there were more). It also stops the walk at an array of
	// an Incident field with more than maxListEntries entries (overlong), leaving the path
	// at its last entry.
	types     bool
	typeProbs []typeProblem
	typeMore  bool
	overlong  bool
	// nullEntries are the null entries of arrays of objects (patients, medications, ...),
	// found when types is set. The decoder turns each into an object with nothing in it, so
	// [null] would be one patient that nobody sent; ParseIncident refuses them.
	nullEntries []Problem

	// The first backing arrays of path, seen and folded: an incident of the usual size
	// needs no more.
	pathBuf   [16]pathSeg
	seenBuf   [64]foldedKey
	foldedBuf [1024]byte
}

// pathSeg is one step of the path: an array index, or an object key (by its opening quote in
// data) and, for the type check, the field it decodes into.
type pathSeg struct {
	start int // an object key's opening quote in data
	index int // an array index, or -1 for an object key
	field *jsonField
}

type foldedKey struct{ from, to int }

const (
	// maxWalkDepth bounds the recursion; encoding/json refuses deeper documents anyway.
	maxWalkDepth = 10000
	// smallObject is how many keys an object may have before its keys are indexed by hash:
	// up to it, comparing a new key with each earlier one is cheaper than hashing.
	smallObject = 16
	// maxTypeProblems is how many values of the wrong type are listed: a body of millions of
	// them would otherwise get an answer of millions of lines.
	maxTypeProblems = 100
	// maxListEntries bounds the arrays of Incident fields that ParseIncident lets the decoder
	// read. Every list takes at most 100 entries (Validate says which); a longer one is
	// refused there, but decoding millions of entries first costs seconds. This bound, far
	// above any list's, stops such a body before the decoder sees it.
	maxListEntries = 1000
)

// walk checks the whole document; afterwards bad says whether it was well formed.
func (w *bodyWalk) walk() {
	w.path, w.seen, w.folded = w.pathBuf[:0], w.seenBuf[:0], w.foldedBuf[:0]
	if w.dups {
		w.seed = maphash.MakeSeed()
	}
	var root reflect.Type
	if w.types {
		root = reflect.TypeFor[Incident]()
	}
	w.skipSpace()
	if w.value(root) {
		return
	}
	w.skipSpace()
	if w.i < len(w.data) {
		w.bad = true // data after the value
	}
}

func (w *bodyWalk) skipSpace() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// stop marks the document malformed and moves to its end.
func (w *bodyWalk) stop() {
	w.bad = true
	w.i = len(w.data)
}

// value walks one value that should decode into t (nil: not checked) and reports whether the
// walk must stop (a duplicate key was found).
func (w *bodyWalk) value(t reflect.Type) bool {
	if w.i >= len(w.data) {
		w.stop()
		return false
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch w.data[w.i] {
	case '{':
		return w.object(t)
	case '[':
		return w.array(t)
	case '"':
		start := w.i
		escaped, ok := w.skipStr()
		if !ok {
			w.stop()
			return false
		}
		if t != nil && t.Kind() != reflect.String {
			w.typeProblem(t)
		}
		if w.enc {
			w.checkText(start, escaped, false)
		}
		return false
	}
	start := w.i
	// A number, true, false or null: everything up to the next delimiter.
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			w.checkScalar(t, w.data[start:w.i])
			return false
		}
		w.i++
	}
	w.checkScalar(t, w.data[start:w.i])
	return false
}

func (w *bodyWalk) object(t reflect.Type) bool {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxWalkDepth {
		w.stop()
		return false
	}
	var fields *jsonFields
	if t != nil {
		if t.Kind() == reflect.Struct {
			fields = jsonFieldsOf(t)
		} else {
			w.typeProblem(t)
		}
	}
	w.i++ // '{'
	// This object's keys are seen[base:], in folded[foldBase:]. Past smallObject keys they
	// are also in index, by hash, so that the check stays linear in the object's size.
	base, foldBase := len(w.seen), len(w.folded)
	defer func() { w.seen, w.folded = w.seen[:base], w.folded[:foldBase] }()
	var index map[uint64]int
	for n := 0; ; n++ {
		w.skipSpace()
		if w.i < len(w.data) && w.data[w.i] == '}' && n == 0 {
			w.i++
			return false
		}
		if w.i >= len(w.data) || w.data[w.i] != '"' {
			w.stop()
			return false
		}
		start := w.i
		escaped, ok := w.skipStr()
		if !ok {
			w.stop()
			return false
		}
		if w.enc {
			w.checkText(start, escaped, true)
		}
		seg := pathSeg{start: start, index: -1}
		if fields != nil {
			seg.field = fields.lookup(w.rawKey(start, escaped))
		}
		w.path = append(w.path, seg)
		if w.dups {
			k := w.fold(start, escaped)
			if w.repeats(k, base, &index) {
				w.dupFound = true
				return true
			}
			w.seen = append(w.seen, k)
		}
		w.skipSpace()
		if w.i >= len(w.data) || w.data[w.i] != ':' {
			w.stop()
			return false
		}
		w.i++
		w.skipSpace()
		var ft reflect.Type
		if seg.field != nil {
			ft = seg.field.typ
		}
		if w.value(ft) {
			return true
		}
		if !w.next('}') {
			return false
		}
	}
}

func (w *bodyWalk) array(t reflect.Type) bool {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxWalkDepth {
		w.stop()
		return false
	}
	var elem reflect.Type
	if t != nil {
		if t.Kind() == reflect.Slice {
			elem = t.Elem()
		} else {
			w.typeProblem(t)
		}
	}
	w.i++ // '['
	for n := 0; ; n++ {
		w.skipSpace()
		if w.i < len(w.data) && w.data[w.i] == ']' && n == 0 {
			w.i++
			return false
		}
		w.path = append(w.path, pathSeg{index: n})
		if elem != nil && n == maxListEntries {
			w.overlong = true
			return true
		}
		start := w.i
		if w.value(elem) {
			return true
		}
		if elem != nil && elem.Kind() == reflect.Struct && string(w.data[start:w.i]) == "null" && len(w.nullEntries) < maxTypeProblems {
			w.nullEntries = append(w.nullEntries, Problem{Field: w.pathString(w.path, true),
				Message: "must be an object, not null: leave the entry out of the list instead"})
		}
		if !w.next(']') {
			return false
		}
	}
}

// next ends a member or entry that has just been walked: it leaves the path, and moves past
// the comma that announces another (true) or the closing bracket (false). Anything else is
// malformed, and stops the walk.
func (w *bodyWalk) next(closing byte) bool {
	w.path = w.path[:len(w.path)-1]
	w.skipSpace()
	if w.i >= len(w.data) {
		w.stop()
		return false
	}
	switch w.data[w.i] {
	case ',':
		w.i++
		return true
	case closing:
		w.i++
		return false
	}
	w.stop()
	return false
}

// skipStr moves past the JSON string at w.i and reports whether it holds an escape.
func (w *bodyWalk) skipStr() (escaped, ok bool) {
	w.i++ // '"'
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case '\\':
			escaped = true
			w.i += 2
			continue
		case '"':
			w.i++
			return escaped, true
		}
		w.i++
	}
	return escaped, false
}

// rawKey returns the key whose string starts at start and has just been skipped, unescaped
// into w.scratch when it has escapes. The result is only valid until the next call.
func (w *bodyWalk) rawKey(start int, escaped bool) []byte {
	raw := w.data[start+1 : w.i-1]
	if !escaped {
		return raw
	}
	w.scratch = appendUnquoted(w.scratch[:0], raw)
	return w.scratch
}

// key returns the string whose opening quote is at start, unescaped as encoding/json
// unescapes it (appendUnquoted), with any byte that is not UTF-8 as U+FFFD.
func (w *bodyWalk) key(start int) string {
	t := bodyWalk{data: w.data, i: start}
	t.skipStr()
	end := t.i - 1
	if end < start+1 {
		end = start + 1
	}
	return string(appendUnquoted(nil, w.data[start+1:end]))
}

// pathString writes the path out: object keys as sent (unescaped, NHS numbers redacted, since
// it is returned to the sender and may be logged), or, with fieldNames, as the names of the
// fields they decode into; "" for the document itself.
func (w *bodyWalk) pathString(segs []pathSeg, fieldNames bool) string {
	var b strings.Builder
	for _, seg := range segs {
		if seg.index >= 0 {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
			continue
		}
		var key string
		if fieldNames && seg.field != nil {
			key = seg.field.name
		} else {
			key, _ = privacy.RedactText(w.key(seg.start))
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if key == "" {
			key = "(empty key)"
		}
		b.WriteString(key)
	}
	return b.String()
}

// AppendUnquoted is appendUnquoted, for another reader of JSON bytes that must unquote a
// string exactly as encoding/json does (ingest/httppush's content hash).
func AppendUnquoted(dst, s []byte) []byte { return appendUnquoted(dst, s) }

// appendUnquoted appends the JSON string body s (without its quotes) unescaped exactly as
// encoding/json unescapes it (unquoteBytes in its decode.go): the usual escapes, \' as a
// quote, \uXXXX with surrogate pairs joined and a lone surrogate as U+FFFD, and every byte
// that is not UTF-8 as U+FFFD. A malformed escape is kept as written; the decoder refuses
// the document anyway.
func appendUnquoted(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\' && r+1 < len(s):
			switch e := s[r+1]; e {
			case '"', '\\', '/', '\'':
				dst = append(dst, e)
				r += 2
			case 'b':
				dst = append(dst, '\b')
				r += 2
			case 'f':
				dst = append(dst, '\f')
				r += 2
			case 'n':
				dst = append(dst, '\n')
				r += 2
			case 'r':
				dst = append(dst, '\r')
				r += 2
			case 't':
				dst = append(dst, '\t')
				r += 2
			case 'u':
				rr := getu4(s[r:])
				if rr < 0 {
					dst = append(dst, c)
					r++
					break
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						r += 6
						dst = utf8.AppendRune(dst, dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
			default:
				dst = append(dst, c)
				r++
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			dst = utf8.AppendRune(dst, rr)
			r += size
		}
	}
	return dst
}

// getu4 decodes \uXXXX from the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// encodingProblems names every string in the JSON document, key or value, that is not clean
// UTF-8 text (garbled), in the order they appear. A string is looked at after unescaping, as
// the decoder reads it, so "\u00c3\u00a9" is as garbled as "Ã©". It returns nil if data is
// not well formed: the decoder reports that.
func encodingProblems(data []byte) []Problem {
	w := bodyWalk{data: data, enc: true}
	w.walk()
	if w.bad {
		return nil
	}
	return w.encProbs
}

// checkText checks the string whose opening quote is at start, just skipped: an object key
// (reported on its object) or a value (reported on itself). Plain ASCII without escapes,
// most text, cannot be garbled and is not unescaped.
func (w *bodyWalk) checkText(start int, escaped, isKey bool) {
	raw := w.data[start+1 : w.i-1]
	if !escaped && isASCII(raw) {
		return
	}
	w.scratch = appendUnquoted(w.scratch[:0], raw)
	why := garbled(string(w.scratch))
	if why == "" {
		return
	}
	path := w.pathString(w.path, false) // a key is not on the path yet: it is reported on its object
	switch {
	case isKey && path == "":
		w.encProbs = append(w.encProbs, Problem{Message: "body has a key that " + why})
	case isKey:
		w.encProbs = append(w.encProbs, Problem{Field: path, Message: "has a key that " + why})
	case path == "":
		w.encProbs = append(w.encProbs, Problem{Message: "body " + why}) // the whole body is this one string
	default:
		w.encProbs = append(w.encProbs, Problem{Field: path, Message: why})
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
