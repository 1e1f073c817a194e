package privacy

import (
	"strings"
	"testing"
)

// naiveIDCover marks the units of u that some id covers, trying every id from every start
// of a word or number: the definition the automaton must meet.
func naiveIDCover(u []unit, ids [][]rune) []bool {
	covered := make([]bool, len(u))
	for i := range u {
		if !alnum(u[i]) || i > 0 && u[i-1].class == u[i].class {
			continue
		}
		for _, key := range ids {
			j, k := 0, i
			for k < len(u) && j < len(key) {
				if x := u[k]; alnum(x) {
					if x.r != key[j] {
						break
					}
					j++
				} else if x.class != classSep || j == 0 {
					break
				}
				k++
			}
			if j == len(key) && (k == len(u) || u[k].class != u[k-1].class) {
				for c := i; c < k; c++ {
					covered[c] = true
				}
			}
		}
	}
	return covered
}

// FuzzIDMatcher: the automaton covers exactly the units that trying each id from each start
// covers, for any text and ids.
func FuzzIDMatcher(f *testing.F) {
	f.Add("RRK1023456 rrk-102-3456 xRRK1023456 RRK10234567 5RRK1023456X", "RRK1023456,1023456,K10")
	f.Add("a a a a a a a a a b a a", "aaaa,aaaaa,aaab,ab")
	f.Add("ab12 ab 12 ab-1-2 abab12", "ab12,b12,abab")
	f.Add("", "abcd")
	f.Fuzz(func(t *testing.T, text, idList string) {
		var ids [][]rune
		for _, id := range strings.Split(idList, ",") {
			var key []rune
			for _, x := range appendView(nil, id) {
				if alnum(x) {
					key = append(key, x.r)
				}
			}
			if len(key) > 0 {
				ids = append(ids, key)
			}
		}
		u := appendView(nil, text)
		want := naiveIDCover(u, ids)
		got := make([]bool, len(u))
		if m := newIDMatcher(ids); m != nil {
			for _, sp := range m.appendSpans(u, &scratch{}, nil) {
				for c := sp.first; c <= sp.last; c++ {
					got[c] = true
				}
			}
		}
		for i := range u {
			if got[i] != want[i] {
				t.Fatalf("text %q, ids %q: unit %d (%q) covered %v, want %v", text, idList, i, u[i].r, got[i], want[i])
			}
		}
	})
}
