package httppush

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/psgw/psgw/fhir"
)

// The canonical form of an incident is, and must stay, exactly what encoding/json gives for
// json.Marshal of the body decoded by json.Unmarshal into an any: a revisionless record's id
// is made from its hash (docs/architecture.md, "record id"), and a hash that changed for
// content already stored would turn a re-send into an amendment. Decoding into maps and encoding again cost
// twice what parsing the incident costs on a 16 MiB body with a million keys (issue 15), so
// canonicalSum produces the same bytes in one scan and one write, without building the maps:
// it reproduces encoding/json's grammar and nesting limit (what Unmarshal refuses is hashed
// as sent), its unquoting (invalid UTF-8 and lone surrogates become U+FFFD, the last of
// repeated keys wins), its map key order (bytewise on the unquoted key), its HTML-safe
// string escaping and its float64 number format. FuzzContentHashMatchesReference holds it to
// the reference, encoding/json itself.

// maxCanonDepth is encoding/json's nesting limit (scanner.go, maxNestingDepth): Unmarshal
// refuses a body nested deeper.
const maxCanonDepth = 10000

// errCanon is any reason Unmarshal would refuse the body: the caller hashes it as sent.
var errCanon = errors.New("not canonicalisable")

// Node kinds on the tape.
const (
	kObject   byte = iota // end: the index after its last descendant; start: its number of keys
	kArray                // end: the index after its last descendant
	kString               // start, end: the bytes between the quotes, which need no rewriting
	kStringEx             // as kString, with escapes, non-ASCII or HTML-unsafe bytes to rewrite
	kNumber               // start, end: the number as sent
	kTrue
	kFalse
	kNull
)

// node is one value (or object key) of the body, in document order; an object's children
// alternate key and value. Offsets are int32 to keep
// the tape small: a million keys make two million nodes. Bodies of 2 GiB and more (far above
// any body limit) take encoding/json's own path.
type node struct {
	start, end int32
	kind       byte
}

// member is one key and value of an object being written. It holds no pointers, so that a
// million of them cost the garbage collector nothing: the unquoted key is src[ks:ke] when
// plain (written as sent), arena[ks:ke] otherwise.
type member struct {
	prefix uint64 // the key's first eight bytes, big-endian, zero-padded: most comparisons end here
	ks, ke int32
	val    int32 // node index of the value
	plain  bool
}

func (c *canonicaliser) key(m member) []byte {
	if m.plain {
		return c.src[m.ks:m.ke]
	}
	return c.arena[m.ks:m.ke]
}

// canonicaliser holds the state of one canonicalisation; its buffers are reused across objects.
type canonicaliser struct {
	src     []byte
	pos     int
	nodes   []node
	members []member // a stack: each object being written owns a segment
	arena   []byte   // unquoted keys that differ from their bytes as sent
	tmp     []byte
	out     []byte
	h       hash.Hash // when set, out is flushed into it as it grows
}

// flushAt is how much canonical output is buffered before it is hashed.
const flushAt = 32 << 10

// canonicalSum is the SHA-256 of the body's canonical JSON, or of the body as sent when
// encoding/json would not decode it.
func canonicalSum(body []byte) [sha256.Size]byte {
	h := sha256.New()
	if len(body) >= math.MaxInt32 {
		canon, ok := appendCanonical(nil, body) // encoding/json's own path
		if !ok {
			canon = body
		}
		h.Write(canon)
	} else if c := newCanonicaliser(body, h); c.run() == nil {
		h.Write(c.out)
	} else {
		h.Reset() // it may have taken part of the canonical form before a refused number
		h.Write(body)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// appendCanonical appends the body's canonical JSON to dst; ok is false (and dst returned
// unchanged) when encoding/json would not decode it.
func appendCanonical(dst, body []byte) (out []byte, ok bool) {
	if len(body) >= math.MaxInt32 {
		var v any
		if json.Unmarshal(body, &v) != nil {
			return dst, false
		}
		b, err := json.Marshal(v)
		if err != nil {
			return dst, false
		}
		return append(dst, b...), true
	}
	c := newCanonicaliser(body, nil)
	c.out = dst
	if c.run() != nil {
		return dst, false
	}
	return c.out, true
}

func newCanonicaliser(body []byte, h hash.Hash) *canonicaliser {
	return &canonicaliser{src: body, h: h}
}

func (c *canonicaliser) run() error {
	// Every value but the top one follows a comma, colon or opening bracket, and every key a
	// comma or brace, so their count bounds the tape (less those inside strings). It is capped
	// at one node per eight bytes, which a million keys in 16 MiB stay under, so that a body
	// of commas in a string does not reserve a tape it never needs.
	bound := 1 + bytes.Count(c.src, []byte{','}) + bytes.Count(c.src, []byte{':'}) +
		bytes.Count(c.src, []byte{'['}) + bytes.Count(c.src, []byte{'{'})
	c.nodes = make([]node, 0, min(bound, len(c.src)/8+8))
	c.skipSpace()
	if err := c.parseValue(0); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos != len(c.src) {
		return errCanon // data after the top-level value
	}
	if _, err := c.emit(0); err != nil {
		return err
	}
	return nil
}

// isSpace is encoding/json's white space.
func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (c *canonicaliser) skipSpace() {
	for c.pos < len(c.src) && isSpace(c.src[c.pos]) {
		c.pos++
	}
}

// parseValue reads the value at c.pos (white space already skipped) onto the tape, refusing
// what encoding/json's scanner refuses. depth is the number of containers around it.
func (c *canonicaliser) parseValue(depth int) error {
	if c.pos >= len(c.src) {
		return errCanon
	}
	switch b := c.src[c.pos]; {
	case b == '{' || b == '[':
		if depth+1 > maxCanonDepth {
			return errCanon
		}
		kind, closer := kObject, byte('}')
		if b == '[' {
			kind, closer = kArray, ']'
		}
		idx := len(c.nodes)
		c.nodes = append(c.nodes, node{kind: kind})
		c.pos++
		c.skipSpace()
		if c.pos < len(c.src) && c.src[c.pos] == closer {
			c.pos++
			c.nodes[idx].end = int32(len(c.nodes))
			return nil
		}
		for {
			if kind == kObject {
				if c.pos >= len(c.src) || c.src[c.pos] != '"' {
					return errCanon
				}
				if err := c.parseString(); err != nil {
					return err
				}
				c.nodes[idx].start++
				c.skipSpace()
				if c.pos >= len(c.src) || c.src[c.pos] != ':' {
					return errCanon
				}
				c.pos++
				c.skipSpace()
			}
			if err := c.parseValue(depth + 1); err != nil {
				return err
			}
			c.skipSpace()
			if c.pos >= len(c.src) {
				return errCanon
			}
			switch c.src[c.pos] {
			case ',':
				c.pos++
				c.skipSpace()
				continue
			case closer:
				c.pos++
				c.nodes[idx].end = int32(len(c.nodes))
				return nil
			}
			return errCanon
		}
	case b == '"':
		return c.parseString()
	case b == '-' || '0' <= b && b <= '9':
		return c.parseNumber()
	case b == 't':
		return c.parseLiteral("true", kTrue)
	case b == 'f':
		return c.parseLiteral("false", kFalse)
	case b == 'n':
		return c.parseLiteral("null", kNull)
	}
	return errCanon
}

func (c *canonicaliser) parseLiteral(lit string, kind byte) error {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(lit)) {
		return errCanon
	}
	c.pos += len(lit)
	c.nodes = append(c.nodes, node{kind: kind})
	return nil
}

// Byte classes inside a string.
const (
	cPlain   = iota // written as sent
	cQuote          // ends the string
	cEscape         // a backslash
	cControl        // below 0x20: refused
	cRewrite        // HTML-unsafe ASCII or the start of a multi-byte sequence (maybe invalid)
)

var stringClass = func() (t [256]byte) {
	for i := range t {
		switch {
		case i < 0x20:
			t[i] = cControl
		case i == '"':
			t[i] = cQuote
		case i == '\\':
			t[i] = cEscape
		case i == '<' || i == '>' || i == '&' || i >= utf8.RuneSelf:
			t[i] = cRewrite
		}
	}
	return t
}()

// parseString reads the string at c.pos onto the tape.
func (c *canonicaliser) parseString() error {
	src := c.src
	p := c.pos + 1
	start := p
	kind := kString
	for {
		if p >= len(src) {
			return errCanon
		}
		switch stringClass[src[p]] {
		case cPlain:
			p++
			continue
		case cQuote:
			c.nodes = append(c.nodes, node{start: int32(start), end: int32(p), kind: kind})
			c.pos = p + 1
			return nil
		case cControl:
			return errCanon
		case cRewrite:
			kind = kStringEx
			p++
			continue
		}
		// A backslash: the escapes encoding/json's scanner takes.
		kind = kStringEx
		if p+1 >= len(src) {
			return errCanon
		}
		switch src[p+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			p += 2
		case 'u':
			if p+6 > len(src) {
				return errCanon
			}
			for _, h := range src[p+2 : p+6] {
				if !isHex(h) {
					return errCanon
				}
			}
			p += 6
		default:
			return errCanon
		}
	}
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// parseNumber reads a number in JSON's grammar onto the tape; whether it fits a float64 is
// found when it is written.
func (c *canonicaliser) parseNumber() error {
	src := c.src
	p := c.pos
	start := p
	if src[p] == '-' {
		p++
	}
	digits := func() int {
		n := 0
		for p < len(src) && '0' <= src[p] && src[p] <= '9' {
			p++
			n++
		}
		return n
	}
	switch {
	case p >= len(src):
		return errCanon
	case src[p] == '0':
		p++
	case '1' <= src[p] && src[p] <= '9':
		digits()
	default:
		return errCanon
	}
	if p < len(src) && src[p] == '.' {
		p++
		if digits() == 0 {
			return errCanon
		}
	}
	if p < len(src) && (src[p] == 'e' || src[p] == 'E') {
		p++
		if p < len(src) && (src[p] == '+' || src[p] == '-') {
			p++
		}
		if digits() == 0 {
			return errCanon
		}
	}
	// What follows must end the value; parseValue's caller checks it is a delimiter.
	c.nodes = append(c.nodes, node{start: int32(start), end: int32(p), kind: kNumber})
	c.pos = p
	return nil
}

// next is the index of the node after the value at i and its descendants.
func (c *canonicaliser) next(i int) int {
	if k := c.nodes[i].kind; k == kObject || k == kArray {
		return int(c.nodes[i].end)
	}
	return i + 1
}

func (c *canonicaliser) flush() {
	if c.h != nil && len(c.out) >= flushAt {
		c.h.Write(c.out)
		c.out = c.out[:0]
	}
}

// emit writes the value at node i as json.Marshal would write what json.Unmarshal decoded
// from it, and returns the index of the node after it.
func (c *canonicaliser) emit(i int) (int, error) {
	n := c.nodes[i]
	switch n.kind {
	case kObject:
		return c.emitObject(i)
	case kArray:
		c.out = append(c.out, '[')
		for j := i + 1; j < int(n.end); {
			if j > i+1 {
				c.out = append(c.out, ',')
			}
			var err error
			if j, err = c.emit(j); err != nil {
				return 0, err
			}
		}
		c.out = append(c.out, ']')
	case kString:
		c.out = append(c.out, '"')
		c.out = append(c.out, c.src[n.start:n.end]...)
		c.out = append(c.out, '"')
	case kStringEx:
		c.tmp = fhir.AppendUnquoted(c.tmp[:0], c.src[n.start:n.end])
		c.out = appendJSONString(c.out, c.tmp)
	case kNumber:
		var err error
		if c.out, err = appendNumber(c.out, c.src[n.start:n.end]); err != nil {
			return 0, err
		}
	case kTrue:
		c.out = append(c.out, "true"...)
	case kFalse:
		c.out = append(c.out, "false"...)
	case kNull:
		c.out = append(c.out, "null"...)
	}
	c.flush()
	return c.next(i), nil
}

// emitObject writes the object at node i with its keys in json.Marshal's map order (bytewise
// on the unquoted key), keeping only the last value of a repeated key, as Unmarshal into a
// map does.
func (c *canonicaliser) emitObject(i int) (int, error) {
	end := int(c.nodes[i].end)
	base := len(c.members)
	c.members = slices.Grow(c.members, int(c.nodes[i].start))
	sorted := true
	for j := i + 1; j < end; j = c.next(j + 1) {
		k := c.nodes[j]
		m := member{ks: k.start, ke: k.end, val: int32(j + 1), plain: k.kind == kString}
		if !m.plain {
			m.ks = int32(len(c.arena))
			c.arena = fhir.AppendUnquoted(c.arena, c.src[k.start:k.end])
			m.ke = int32(len(c.arena))
		}
		m.prefix = keyPrefix(c.key(m))
		if sorted && len(c.members) > base && bytes.Compare(c.key(c.members[len(c.members)-1]), c.key(m)) >= 0 {
			sorted = false
		}
		c.members = append(c.members, m)
	}
	seg := c.members[base:]
	if !sorted {
		// Equal keys end up in document order, so the last of each run is the one a map keeps.
		c.sortMembers(seg)
		w := 0
		for r := range seg {
			if r+1 < len(seg) && bytes.Equal(c.key(seg[r]), c.key(seg[r+1])) {
				continue
			}
			seg[w] = seg[r]
			w++
		}
		c.members = c.members[:base+w]
	}
	count := len(c.members) - base
	c.out = append(c.out, '{')
	for k := range count {
		if k > 0 {
			c.out = append(c.out, ',')
		}
		m := c.members[base+k] // c.members may grow (and move) while a value is written
		if m.plain {
			c.out = append(c.out, '"')
			c.out = append(c.out, c.src[m.ks:m.ke]...)
			c.out = append(c.out, '"')
		} else {
			c.out = appendJSONString(c.out, c.arena[m.ks:m.ke])
		}
		c.out = append(c.out, ':')
		if _, err := c.emit(int(m.val)); err != nil {
			return 0, err
		}
	}
	c.out = append(c.out, '}')
	c.members = c.members[:base]
	c.flush()
	return end, nil
}

// radixFrom is the number of keys from which an object's keys are sorted by radix on their
// prefixes: a comparison sort of a million keys was three quarters of the hash's time.
const radixFrom = 256

// sortMembers sorts seg, in document order, by key and then document order (val): a total
// order, so any correct sort gives the same result.
func (c *canonicaliser) sortMembers(seg []member) {
	full := func(a, b member) int {
		if a.prefix != b.prefix {
			return cmp.Compare(a.prefix, b.prefix)
		}
		if r := bytes.Compare(c.key(a), c.key(b)); r != 0 {
			return r
		}
		return cmp.Compare(a.val, b.val)
	}
	if len(seg) < radixFrom {
		slices.SortFunc(seg, full)
		return
	}
	// Least significant byte first; each pass is stable, so members of equal prefix stay in
	// document order. A pass where every prefix has the same byte moves nothing and is skipped.
	src, dst := seg, make([]member, len(seg))
	for shift := uint(0); shift < 64; shift += 8 {
		var counts [256]int
		for _, m := range src {
			counts[byte(m.prefix>>shift)]++
		}
		if counts[byte(src[0].prefix>>shift)] == len(src) {
			continue
		}
		at := 0
		for i, n := range counts {
			counts[i] = at
			at += n
		}
		for _, m := range src {
			b := byte(m.prefix >> shift)
			dst[counts[b]] = m
			counts[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &seg[0] {
		copy(seg, src)
	}
	// Keys that share their prefix (longer than eight bytes, or equal to it but for trailing
	// NULs) are ordered by the whole key.
	for i := 0; i < len(seg); {
		j := i + 1
		for j < len(seg) && seg[j].prefix == seg[i].prefix {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(seg[i:j], full)
		}
		i = j
	}
}

// keyPrefix is the first eight bytes of key as a big-endian number, zero-padded: keys in the
// order of their prefixes are in bytewise order; equal prefixes need the whole keys compared.
func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// appendNumber writes a JSON number as json.Marshal writes the float64 json.Unmarshal decodes
// it to (encoding/json's floatEncoder). An integer of at most 15 digits is its own float64's
// shortest form, so it is copied as sent.
func appendNumber(dst, num []byte) ([]byte, error) {
	digits := len(num)
	if num[0] == '-' {
		digits--
	}
	if digits <= 15 && bytes.IndexAny(num, ".eE") < 0 {
		return append(dst, num...), nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return dst, errCanon // out of float64's range: Unmarshal refuses it
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		b := dst[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s quoted as json.Marshal writes a string (encoding/json's
// appendString with HTML escaping).
func appendJSONString(dst, src []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			if stringClass[b] == cPlain {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Other control characters, and <, > and &.
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRune(src[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	return append(dst, '"')
}
