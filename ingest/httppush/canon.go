package httppush

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// canonicalJSON returns what json.Marshal gives for the value json.Unmarshal reads from body
// into an any (object keys sorted, no white space, strings escaped as encoding/json escapes
// them, numbers read as float64 and written back), and ok false when that decode would fail
// (the caller then hashes the bytes as they are, as contentHash always has).
//
// It exists because the decode into maps and the encode again cost a million-key body about
// two seconds of CPU, more than the rest of ingest together (docs/privacy.md, "Hostile
// input"). The output must stay byte for byte what the decode and encode give, since the
// hash names records already stored: FuzzCanonicalJSON checks it against them. It reads the
// body once into a tree of byte ranges (sorting each object's members), then writes the tree
// once, so its time is linear in the body apart from the sorting, however deep the nesting.
func canonicalJSON(body []byte) (out []byte, ok bool) {
	if !json.Valid(body) { // also refuses nesting deeper than encoding/json reads
		return nil, false
	}
	c := canon{in: body}
	c.skipSpace()
	root, ok := c.value()
	if !ok {
		return nil, false
	}
	return c.write(make([]byte, 0, len(body)), root), true
}

// canon reads JSON already known to be valid into nodes.
type canon struct {
	in    []byte
	pos   int
	nodes []node
	kids  [][]member // an object's members or an array's elements (key nil), by node.aux
	texts [][]byte   // scalars whose canonical form differs from their literal, by node.aux
}

// node is one value: a scalar whose canonical bytes are in[start:end] (kind 's') or
// texts[aux] (kind 't'), or an object or array ('{', '[') with its members in kids[aux].
type node struct {
	kind       byte
	start, end int32
	aux        int32
}

// member is one object member (its decoded key) or array element (key nil).
type member struct {
	key   []byte
	value int
}

func (c *canon) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\r', '\n':
			c.pos++
		default:
			return
		}
	}
}

func (c *canon) add(n node) int {
	c.nodes = append(c.nodes, n)
	return len(c.nodes) - 1
}

// literal adds a scalar written as it stands in the input.
func (c *canon) literal(start int) int {
	return c.add(node{kind: 's', start: int32(start), end: int32(c.pos)})
}

// made adds a scalar whose canonical form had to be made.
func (c *canon) made(text []byte) int {
	c.texts = append(c.texts, text)
	return c.add(node{kind: 't', aux: int32(len(c.texts) - 1)})
}

// value reads one value; false when the decode would have failed (a number out of range).
func (c *canon) value() (int, bool) {
	start := c.pos
	switch b := c.in[c.pos]; {
	case b == '{' || b == '[':
		return c.container(b)
	case b == '"':
		s, escaped, ok := c.str()
		if !ok {
			return 0, false
		}
		if !escaped && plainASCII(s) {
			return c.literal(start), true
		}
		return c.made(appendString(nil, s)), true
	case b == 't':
		c.pos += len("true")
	case b == 'f':
		c.pos += len("false")
	case b == 'n':
		c.pos += len("null")
	default:
		text, same, ok := c.number()
		switch {
		case !ok:
			return 0, false
		case same:
			return c.literal(start), true
		}
		return c.made(text), true
	}
	return c.literal(start), true
}

// container reads an object or an array; an object's members end sorted by key, the last of
// equal keys kept, as a map and Marshal leave them.
func (c *canon) container(open byte) (int, bool) {
	closing := byte(']')
	if open == '{' {
		closing = '}'
	}
	c.pos++
	var ms []member
	for {
		c.skipSpace()
		if c.in[c.pos] == closing {
			c.pos++
			break
		}
		var key []byte
		if open == '{' {
			k, _, ok := c.str()
			if !ok {
				return 0, false
			}
			key = k
			c.skipSpace()
			c.pos++ // :
			c.skipSpace()
		}
		v, ok := c.value()
		if !ok {
			return 0, false
		}
		ms = append(ms, member{key: key, value: v})
		c.skipSpace()
		if c.in[c.pos] == ',' {
			c.pos++
		}
	}
	if open == '{' {
		// Values are added in input order, so the value's index orders equal keys as the
		// input did, and an unstable sort gives what a stable one would.
		slices.SortFunc(ms, func(a, b member) int {
			if c := bytes.Compare(a.key, b.key); c != 0 {
				return c
			}
			return a.value - b.value
		})
		kept := ms[:0]
		for i, m := range ms {
			if i+1 < len(ms) && bytes.Equal(ms[i+1].key, m.key) {
				continue
			}
			kept = append(kept, m)
		}
		ms = kept
	}
	c.kids = append(c.kids, ms)
	return c.add(node{kind: open, aux: int32(len(c.kids) - 1)}), true
}

// write appends node i's canonical form.
func (c *canon) write(out []byte, i int) []byte {
	n := c.nodes[i]
	switch n.kind {
	case 's':
		return append(out, c.in[n.start:n.end]...)
	case 't':
		return append(out, c.texts[n.aux]...)
	}
	out = append(out, n.kind)
	for j, m := range c.kids[n.aux] {
		if j > 0 {
			out = append(out, ',')
		}
		if n.kind == '{' {
			out = appendString(out, m.key)
			out = append(out, ':')
		}
		out = c.write(out, m.value)
	}
	if n.kind == '{' {
		return append(out, '}')
	}
	return append(out, ']')
}

// str reads a string literal and returns its decoded value, as encoding/json decodes it
// (invalid UTF-8 and lone surrogates become U+FFFD), and whether it held an escape or a byte
// outside ASCII. A plain literal's value is a slice of the input, not a copy.
func (c *canon) str() (s []byte, escaped bool, ok bool) {
	start := c.pos
	c.pos++ // opening quote
	for c.in[c.pos] != '"' {
		b := c.in[c.pos]
		if b == '\\' {
			escaped = true
			c.pos += 2
			continue
		}
		if b >= 0x80 {
			escaped = true
		}
		c.pos++
	}
	c.pos++ // closing quote
	lit := c.in[start:c.pos]
	if !escaped {
		return lit[1 : len(lit)-1], false, true
	}
	var v string
	if err := json.Unmarshal(lit, &v); err != nil {
		return nil, true, false
	}
	return []byte(v), true, true
}

// number reads a number as encoding/json reads one into an any (a float64) and writes it as
// encoding/json writes a float64.
// same is true when that is the literal itself (an integer of at most 15 digits, which a
// float64 holds exactly), so that nothing need be made.
func (c *canon) number() (text []byte, same, ok bool) {
	start := c.pos
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '-', '+', '.', 'e', 'E':
			c.pos++
			continue
		}
		break
	}
	lit := c.in[start:c.pos]
	if plainInteger(lit) {
		return nil, true, true
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return nil, false, false // out of range: json.Unmarshal fails on it
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	out := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(out); n >= 4 && out[n-4] == 'e' && out[n-3] == '-' && out[n-2] == '0' {
			out[n-2] = out[n-1]
			out = out[:n-1]
		}
	}
	return out, false, true
}

// plainInteger reports whether a valid JSON number is an integer of 1 to 15 digits: a
// float64 holds it exactly, and encoding/json writes it back as it is.
func plainInteger(lit []byte) bool {
	digits := lit
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// appendString appends s as json.Marshal writes a string (HTML characters escaped, invalid
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped): plain printable ASCII as it is, anything else
// through json.Marshal itself.
func appendString(out []byte, s []byte) []byte {
	if !plainASCII(s) {
		q, _ := json.Marshal(string(s)) // a string always marshals
		return append(out, q...)
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

// plainASCII reports whether s is printable ASCII that json.Marshal writes as it is.
func plainASCII(s []byte) bool {
	for _, b := range s {
		if b < 0x20 || b >= 0x80 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
			return false
		}
	}
	return true
}
