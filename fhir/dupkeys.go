package fhir

import (
	"hash/maphash"
	"unicode"
	"unicode/utf8"
)

// duplicateKey reports the path of the first object key that appears twice in the same JSON
// object ("patients[0].sex"), and whether there is one. encoding/json silently keeps the last
// of two keys that decode into the same field, so {"source":"a","source":"b"} would be read
// as source b while the sending system may believe it sent a; such a body is ambiguous and is
// refused instead.
//
// Two keys are the same when encoding/json would match them to the same field: equal after
// unescaping, ignoring case as it does, with Unicode simple case folding ("deſcription" with
// a long s, "RIS\u212a" with a Kelvin sign, are description and risk to it). See foldKey.
//
// Each key is looked up in a set of its object's keys, never compared with every earlier
// one, so the check is linear in the body (bodyWalk). The path redacts NHS numbers in keys.
func duplicateKey(data []byte) (string, bool) {
	w := bodyWalk{data: data, dups: true}
	w.walk()
	if !w.dupFound {
		return "", false
	}
	return w.pathString(w.path, false), true
}

// repeats reports whether the folded key k equals one of its object's earlier keys,
// seen[base:]. A small object compares them all; a larger one keeps *index, the position in
// seen of the first key with each hash, built when the object outgrows smallObject. Two
// different keys with the same hash (a 64-bit collision under a random seed) fall back to
// comparing with every key, so the answer is always exact.
func (w *bodyWalk) repeats(k foldedKey, base int, index *map[uint64]int) bool {
	keys := w.seen[base:]
	if len(keys) < smallObject {
		for _, o := range keys {
			if w.equal(o, k) {
				return true
			}
		}
		return false
	}
	if *index == nil {
		*index = make(map[uint64]int, 2*smallObject)
		for j, o := range keys {
			h := maphash.Bytes(w.seed, w.folded[o.from:o.to])
			if _, dup := (*index)[h]; !dup {
				(*index)[h] = base + j
			}
		}
	}
	h := maphash.Bytes(w.seed, w.folded[k.from:k.to])
	j, ok := (*index)[h]
	switch {
	case !ok:
		(*index)[h] = len(w.seen) // where k is about to be appended
		return false
	case w.equal(w.seen[j], k):
		return true
	}
	for _, o := range keys {
		if w.equal(o, k) {
			return true
		}
	}
	return false
}

func (w *bodyWalk) equal(a, b foldedKey) bool {
	return string(w.folded[a.from:a.to]) == string(w.folded[b.from:b.to])
}

// fold appends the key whose string starts at start, and has just been skipped, to w.folded,
// folded as encoding/json folds a key to match it to a field (foldKey), and returns where it
// is. A key without escapes, the usual case, is folded straight from the body.
func (w *bodyWalk) fold(start int, escaped bool) foldedKey {
	from := len(w.folded)
	w.folded = foldKey(w.folded, w.rawKey(start, escaped))
	return foldedKey{from, len(w.folded)}
}

// foldKey appends key folded as encoding/json folds object keys before matching them to
// struct fields (appendFoldedName in its fold.go): ASCII letters to upper case, any other
// character to the smallest character of its Unicode simple case-folding orbit, and a byte
// that is not UTF-8 to U+FFFD. Two keys fold alike exactly when bytes.EqualFold calls them
// equal, which is how the decoder matches them.
func foldKey(dst, key []byte) []byte {
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		dst = utf8.AppendRune(dst, smallestFold(r))
		i += n
	}
	return dst
}

// smallestFold is the smallest character that folds to the same as r.
func smallestFold(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
