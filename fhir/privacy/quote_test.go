package privacy

import (
	"strings"
	"testing"
)

func TestQuoteCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"Nurse", `"Nurse"`},
		{"ZZZ99", `"ZZZ99"`},
		{"A81001", `"A81001"`},
		{"WARD-7", `"WARD-7"`},
		{"1", `"1"`},
		{"staff_nurse", `"staff_nurse"`},
		{"Jane Doelittle DOB 01/03/1975", "[29 characters, not shown]"},
		{"Student paramedic", "[17 characters, not shown]"},
		{"01/03/1975", "[10 characters, not shown]"},
		{"01-03-1975", "[10 characters, not shown]"},
		{"1.3.75", "[6 characters, not shown]"},
		{"01031975", "[8 characters, not shown]"},
		{"RRK1023456", "[10 characters, not shown]"},
		{"9434765919", "[10 characters, not shown]"},
		{"Siobhán", "[7 characters, not shown]"},
		{"Jane\u200bDoe", "[8 characters, not shown]"},
		{"", "[0 characters, not shown]"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg", "[33 characters, not shown]"},
	} {
		if got := QuoteCode(tc.in); got != tc.want {
			t.Errorf("QuoteCode(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzQuoteCode: a value is shown only when it reads as a code, and then never holds an
// NHS number.
func FuzzQuoteCode(f *testing.F) {
	for _, s := range []string{"Nurse", "01/03/1975", "9434765919", "A-1-2", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := QuoteCode(s)
		switch {
		case CodeLike(s) && ContainsNHSNumber(got):
			t.Fatalf("QuoteCode(%q) = %q quotes an NHS number", s, got)
		case !CodeLike(s) && len(s) > 3 && strings.Contains(got, s):
			t.Fatalf("QuoteCode(%q) = %q shows a value that is not code-like", s, got)
		}
	})
}
