package privacy

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// TestViewReadsEveryCharacterAsNFKD checks the view of each character of Unicode, alone,
// against the full NFKD of it, computed by norm itself: letters lower-cased, digits by
// value, marks and characters that do not show dropped. The view takes a decomposition from
// the tables without applying it (Properties.Decomposition), so this is what proves that the
// tables hold the full decomposition. Planes 2 and 3 are ideographs, and planes 15 and 16
// private use: only their characters with decompositions are checked.
func TestViewReadsEveryCharacterAsNFKD(t *testing.T) {
	bad := 0
	for r := rune(0); r <= unicode.MaxRune && bad < 20; r++ {
		if r == 0x20000 {
			r = 0x2f800 // planes 2 and 3 hold only ideographs, without decompositions but these
		}
		if r == 0x2fa20 {
			r = 0xe0000 // then tags and variation selectors; the rest is unassigned or private
		}
		if !utf8.ValidRune(r) || unicode.Is(unicode.Hangul, r) {
			continue // Hangul syllables decompose algorithmically; the view keeps them whole
		}
		s := string(r)
		var want []rune
		for _, d := range norm.NFKD.String(s) {
			switch {
			case unicode.In(d, unicode.Mn, unicode.Me) || Invisible(d):
			case unicode.IsDigit(d):
				want = append(want, '0'+d-digitZero(d))
			case unicode.IsLetter(d):
				want = append(want, unicode.ToLower(d))
			default:
				want = append(want, d)
			}
		}
		if unicode.In(r, unicode.Mn, unicode.Me) || Invisible(r) {
			want = nil // dropped before it is decomposed
		}
		var got []rune
		for _, u := range appendView(nil, s) {
			got = append(got, u.r)
			if u.start != 0 || int(u.end) != len(s) {
				t.Errorf("U+%04X: unit spans bytes %d-%d of %d", r, u.start, u.end, len(s))
			}
		}
		if r == '[' {
			continue
		}
		if string(got) != string(want) {
			t.Errorf("U+%04X %q: view %q, want %q", r, s, string(got), string(want))
			bad++
		}
	}
}

func TestInvisible(t *testing.T) {
	for _, r := range []rune{0, 0x1b, 0x7f, 0x80, 0x9f, '\u00ad', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff',
		'\u202a', '\u202e', '\u2066', '\u2069', '\u200e', '\u200f', '\u061c', '\u180e', '\ufe0f', '\U000E0001', '\u115f', '\u3164', '\u034f'} {
		if !Invisible(r) {
			t.Errorf("Invisible(U+%04X) = false, want true", r)
		}
	}
	for _, r := range []rune{'a', ' ', '\t', '\n', '\r', '\u0085', '\u00a0', 'é', '\u0301', '9', '９', '—'} {
		if Invisible(r) {
			t.Errorf("Invisible(U+%04X) = true, want false", r)
		}
	}
}

// TestViewKeepsOffsets: every unit points back at the bytes it came from, and what the view
// skips lies only between units.
func TestViewKeepsOffsets(t *testing.T) {
	s := "Ｊｏｓé\u0301 ﬁ\u200b9⁴ [REDACTED NAME] x"
	u := appendView(nil, s)
	var b strings.Builder
	for _, x := range u {
		b.WriteRune(x.r)
	}
	if got, want := b.String(), "jose fi94 [ x"; got != want {
		t.Errorf("view %q, want %q", got, want)
	}
	for i, x := range u {
		if x.start >= x.end || int(x.end) > len(s) || i > 0 && x.start < u[i-1].start {
			t.Errorf("unit %d %q: bytes %d-%d", i, x.r, x.start, x.end)
		}
	}
}
