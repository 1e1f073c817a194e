package csvdrop

import (
	"encoding/csv"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRowEndMatchesEncodingCSV: rowEnd ends every row exactly where encoding/csv does, for
// random text built from the characters that matter (quotes, delimiters, CR, LF), with a
// one-byte and a multi-byte delimiter. skipLongRow relies on it to carry on at the next row.
func TestRowEndMatchesEncodingCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, comma := range []rune{',', '¦', '€'} {
		alphabet := []string{`"`, string(comma), "\n", "\r", "a", " ", "\xc2", "\xe2\x82"}
		for range 20000 {
			var b strings.Builder
			for range rng.IntN(40) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			in := b.String()
			r := csv.NewReader(strings.NewReader(in))
			r.Comma = comma
			r.FieldsPerRecord = -1
			start := int64(0)
			for {
				_, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				var pe *csv.ParseError
				if err != nil && !errors.As(err, &pe) {
					t.Fatalf("%q: %v", in, err)
				}
				end := r.InputOffset()
				e := newRowEnd(comma)
				n, done := e.feed([]byte(in[start:]))
				got := start + int64(n)
				if got != end {
					t.Fatalf("comma %q, input %q: the row from %d ends at %d (done %v), encoding/csv says %d", comma, in, start, got, done, end)
				}
				start = end
			}
		}
	}
}
