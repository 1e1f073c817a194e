package adaptertest

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// ManyKeysBody is a revisionless incident of exactly size bytes holding n unknown keys
// beside its core fields, in an order that is not the canonical one: the cheapest request an
// attacker can make expensive (issue 15), and the one whose content hash costs most.
func ManyKeysBody(tb testing.TB, n, size int) []byte {
	tb.Helper()
	head := `{"source":"datix","local_id":"KEYS-1","event_type":"risk","description":"x"`
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(head)
	room := size - len(head) - 1
	per, extra := room/n, room%n
	for i := range n {
		k := strconv.FormatInt(int64(i), 36) + "_"
		pad := per - len(k) - 5 // ,"k":0
		if i < extra {
			pad++
		}
		b.WriteString(`,"` + k + strings.Repeat("x", max(0, pad)) + `":0`)
	}
	b.WriteByte('}')
	if b.Len() != size {
		tb.Fatalf("built a body of %d bytes, want %d", b.Len(), size)
	}
	return b.Bytes()
}
