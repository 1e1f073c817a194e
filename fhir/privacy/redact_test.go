package privacy

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const p = Placeholder

func TestRedactText(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string
		wantCount int
	}{
		{"empty", "", "", 0},
		{"no digits", "patient fell on the ward", "patient fell on the ward", 0},
		{"contiguous", "NHS no 9434765919 noted", "NHS no " + p + " noted", 1},
		{"whole string", "9434765919", p, 1},
		{"spaces", "id 943 476 5919.", "id " + p + ".", 1},
		{"hyphens", "id 943-476-5919", "id " + p, 1},
		{"mixed separators", "943 476-5919", p, 1},
		{"two numbers", "9434765919,4010232137", p + "," + p, 2},
		{"adjacent letters count as boundaries", "x9434765919y", "x" + p + "y", 1},
		{"fails modulus 11", "call 9434765918", "call 9434765918", 0},
		{"longer run", "ref 94347659190", "ref 94347659190", 0},
		{"preceded by digit", "19434765919", "19434765919", 0},
		{"grouped followed by digit", "943 476 59190", "943 476 59190", 0},
		{"grouped preceded by digit", "1943 476 5919", "1943 476 5919", 0},
		{"a last group of one digit", "943 476 591 9", p, 1},
		// Written shapes beyond 3-3-4 with one space or hyphen.
		{"dots", "NHS no. 943.476.5919.", "NHS no. " + p + ".", 1},
		{"en dashes between spaces", "943 \u2013 476 \u2013 5919", p, 1},
		{"spaced hyphens", "943 - 476 - 5919", p, 1},
		{"grouping 4-3-3", "9434 765 919", p, 1},
		{"grouping 3-4-3", "943 4765 919", p, 1},
		{"grouping 3-7", "943 4765919", p, 1},
		{"grouping 7-3", "9434765 919", p, 1},
		{"grouping 5-5", "94347-65919", p, 1},
		{"grouping 6-4", "943476 5919", p, 1},
		{"tab", "943\t476\t5919", p, 1},
		{"no-break spaces", "943\u00a0476\u00a05919", p, 1},
		{"en dashes", "943\u2013476\u20135919", p, 1},
		{"full-width digits", "ＮＨＳ ９４３４７６５９１９ ok", "ＮＨＳ " + p + " ok", 1},
		{"full-width grouped with ideographic spaces", "９４３\u3000４７６\u3000５９１９", p, 1},
		{"full-width hyphens and stops", "９４３－４７６．５９１９", p, 1},
		{"runs in different scripts joined by separators", "９４３ 476 ５９１９", p, 1},
		{"digits of another script glued on go with it", "0000000000\u07c8", p, 1},
		{"full-width digits mixed with ASCII", "94３4765919", p, 1},
		{"other decimal digits", "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669", p, 1},
		{"full-width failing modulus 11", "９４３４７６５９１８", "９４３４７６５９１８", 0},
		{"grouped after a separate digit group", "bed 1 943 476 5919", "bed 1 " + p, 1},
		{"grouped, then another number", "943 476 5919 476 5919", p + " 476 5919", 1},
		// Not NHS numbers: the guard must not over-match.
		{"twelve digits", "ref 943476591912", "ref 943476591912", 0},
		{"twelve digits grouped 4-4-4", "9434 7659 1912", "9434 7659 1912", 0},
		{"twelve digits grouped 3-3-3-3", "943 476 591 912", "943 476 591 912", 0},
		{"eleven-digit phone number", "call 0121 424 2000", "call 0121 424 2000", 0},
		{"dm+d id", "VMP 39720311000001101", "VMP 39720311000001101", 0},
		{"two-digit groups", "94 34 76 59 19", p, 1},
		{"two groups of one digit", "9 4 3 4 7 6 5 9 1 9", p, 1},
		{"ten digits across more runs are still ten", "1 2 3 4 5 6 7 8 9 1 0", "1 2 3 4 5 6 7 8 9 1 0", 0},
		{"letters between groups", "943 a 476 5919", "943 a 476 5919", 0},
		{"colon between groups", "943:476:5919", "943:476:5919", 0},
		{"date and time", "on 14 03 2025 10 30", "on 14 03 2025 10 30", 0},
		{"full-width run of eleven", "９４３４７６５９１９０", "９４３４７６５９１９０", 0},
		{"nine digits", "943476591", "943476591", 0},
		{"number after a separate digit group", "bed 1 9434765919", "bed 1 " + p, 1},
		{"unicode around", "é9434765919é", "é" + p + "é", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := RedactText(tt.in)
			if got != tt.want || n != tt.wantCount {
				t.Errorf("RedactText(%q) = %q, %d, want %q, %d", tt.in, got, n, tt.want, tt.wantCount)
			}
			if c := ContainsNHSNumber(tt.in); c != (tt.wantCount > 0) {
				t.Errorf("ContainsNHSNumber(%q) = %v, want %v", tt.in, c, tt.wantCount > 0)
			}
		})
	}
}

// TestRedactTextSpellings are the spellings the security review of issue 15 sent through
// the gateway, and their neighbours: each renders as an NHS number, so each must go. The
// text around the number is left byte for byte.
func TestRedactTextSpellings(t *testing.T) {
	for _, tc := range []struct{ name, number string }{
		{"soft hyphens", "943\u00ad476\u00ad5919"},
		{"soft hyphen inside a group", "94\u00ad34765919"},
		{"zero-width space", "943\u200b4765919"},
		{"zero-width joiner and non-joiner", "9\u200d43\u200c4765919"},
		{"word joiner", "943\u2060476\u20605919"},
		{"byte order mark", "943\ufeff4765919"},
		{"bidi override and isolate", "\u202e943\u202c476\u20665919\u2069"},
		{"left-to-right marks", "943\u200e476\u200f5919"},
		{"variation selector", "9\ufe0f434765919"},
		{"combining mark on a digit", "94\u03013476 5919"},
		{"control character", "943\x00476\x7f5919"},
		{"line feeds", "943\n476\n5919"},
		{"CRLF", "943\r\n476\r\n5919"},
		{"line separator", "943\u2028476\u20295919"},
		{"slashes", "943/476/5919"},
		{"underscores", "943_476_5919"},
		{"commas", "943,476,5919"},
		{"full stops with spaces", "943. 476. 5919"},
		{"brackets", "(943) 476 5919"},
		{"square brackets", "[943] 476-5919"},
		{"two spaces", "943  476  5919"},
		{"many spaces", "943        476        5919"},
		{"em dashes", "943\u2014476\u20145919"},
		{"en dashes", "943\u2013476\u20135919"},
		{"horizontal bar", "943\u2015476\u20155919"},
		{"minus signs", "943\u2212476\u22125919"},
		{"no-break spaces", "943\u00a0476\u00a05919"},
		{"em spaces and ogham space", "943\u2003476\u16805919"},
		{"narrow no-break and medium mathematical spaces", "943\u202f476\u205f5919"},
		{"middle dots", "943\u00b7476\u00b75919"},
		{"3-3-3-1", "999 526 018 2"},
		{"1-3-3-3", "9 995 260 182"},
		{"full-width mixed with ASCII", "９４３4765919"},
		{"full-width and ASCII alternating", "9４3４7６5９1９"},
		{"superscript digits", "⁹⁴³⁴⁷⁶⁵⁹¹⁹"},
		{"superscripts mixed with ASCII", "9⁴34765919"},
		{"subscript digits", "₉₄₃₄₇₆₅₉₁₉"},
		{"circled digits", "⑨④③④⑦⑥⑤⑨①⑨"},
		{"mathematical bold digits", "𝟗𝟒𝟑𝟒𝟕𝟔𝟓𝟗𝟏𝟗"},
		{"Arabic-Indic digits", "\u0669\u0664\u0663 \u0664\u0667\u0666 \u0665\u0669\u0661\u0669"},
		{"Arabic-Indic mixed with ASCII", "\u0669\u0664\u06634765919"},
		{"Devanagari digits grouped", "९४३ ४७६ ५९१९"},
		{"everything at once", "(９\u00ad4³)\u00a0\u00a0476\u2014\u200b59 1 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []string{tc.number, strings.ReplaceAll(strings.ReplaceAll(tc.number, "9434765919", "9995260182"), "999 526 018 2", "999 526 018 2")} {
				in := "Pt\u00a0seen, NHS no: " + n + " — ward 7."
				out, c := RedactText(in)
				if want := "Pt\u00a0seen, NHS no: " + p + " — ward 7."; out != want || c != 1 {
					t.Errorf("RedactText(%q) = %q, %d, want %q, 1", in, out, c, want)
				}
			}
		})
	}
}

// TestRedactTextFalsePositives are numbers that are not NHS numbers and must stay: the
// detector is wide, but a run of digits is never split and a group needs separators only.
func TestRedactTextFalsePositives(t *testing.T) {
	for _, in := range []string{
		"BP 120/80, HR 72, RR 18, SpO2 98%, temp 37.5",
		"seen 14/03/2025 at 10:30, again 15/03/2025 at 11:45",
		"dm+d 39720311000001101 and 39720411000001105",
		"call 0121 424 2000 or 07700 900123",
		"doses at 08:00, 12:00, 16:00 and 20:00",
		"12 3456 7890 12",
		"order 94347659190 and ref 19434765919",
	} {
		want := in
		if out, _ := RedactText(in); out != want {
			t.Errorf("RedactText(%q) = %q, want %q", in, out, want)
		}
	}
}

func TestRedactTextNoMatchDoesNotAllocate(t *testing.T) {
	s := strings.Repeat("ward 7, bed 12, 0121 424 2000; dose 10 mg at 14:00. ", 40)
	allocs := testing.AllocsPerRun(100, func() {
		if out, n := RedactText(s); n != 0 || out != s {
			t.Fatalf("got %d redactions, want 0", n)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations, want 0", allocs)
	}
}

func FuzzRedactText(f *testing.F) {
	for _, s := range []string{
		"", "9434765919", "943 476 5919", "943-476-5919", "19434765919",
		"NHS 9434765919 and 4010232137.", "943 476 59190", p, "[REDACTED NHS NUMBER",
		"0000000000 0000000000", "943 476 5919 476 5919",
		"943.476.5919", "9434 765 919", "943 - 476 - 5919", "９４３４７６５９１９", "９４３\u3000４７６\u3000５９１９",
		"1 943 476 5919 476", "943 4765 919 4", "Ÿ943 476 5919", "0000000000\u07c8",
		"943\u00ad476\u00ad5919", "(943) 476 5919", "999 526 018 2", "943\n476\n5919", "９４３4765919",
		"⁹⁴³⁴⁷⁶⁵⁹¹⁹", "\u202e943\u202c476\u20665919\u2069", "9 4 3 4 7 6 5 9 1 9 4 3", "[NHS] 943 [N]",
		"a\u0301 9434765919\u0301b", "㉑㉑㉑㉑㉑", "⒑⒑⒑⒑⒑",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, n := RedactText(in)
		if n < 0 {
			t.Fatalf("got count %d, want >= 0", n)
		}
		if n == 0 && out != in {
			t.Fatalf("got %q with count 0, want the input unchanged", out)
		}
		if ContainsNHSNumber(out) {
			t.Fatalf("output %q still contains an NHS number", out)
		}
		if again, m := RedactText(out); m != 0 || again != out {
			t.Fatalf("second pass over %q redacted %d more, want 0", out, m)
		}
		if c := utf8.RuneCountInString(out); c > max(MaxText, utf8.RuneCountInString(in)) {
			t.Fatalf("output has %d characters, more than the input and MaxText", c)
		}
		checkOutsideSpansUnchanged(t, in, out, n)
		// Independent oracle: in the NFKC form of the output, without the characters that do
		// not show, no run of exactly ten ASCII digits passes Modulus 11.
		for _, run := range asciiDigitRuns(visible(out)) {
			if ValidNHSNumber(run) {
				t.Fatalf("output %q keeps the valid run %q", out, run)
			}
		}
	})
}

// checkOutsideSpansUnchanged checks that out is in with n disjoint spans replaced by
// Placeholder, each span holding ten digits that, when they are ASCII after NFKC, pass
// Modulus 11 (and may hold digits of another script glued on): redaction changes nothing but
// the numbers it removes.
func checkOutsideSpansUnchanged(t *testing.T, in, out string, n int) {
	t.Helper()
	spans := nhsByteSpans(in)
	if len(spans) != n {
		t.Fatalf("%q: %d spans, count %d", in, len(spans), n)
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp[0] < last || sp[1] <= sp[0] || sp[1] > len(in) {
			t.Fatalf("%q: spans %v overlap or are out of order", in, spans)
		}
		b.WriteString(in[last:sp[0]])
		b.WriteString(Placeholder)
		last = sp[1]
		digits := visible(in[sp[0]:sp[1]])
		count, ascii := 0, ""
		for _, r := range digits {
			if unicode.IsDigit(r) {
				count++
				if r < utf8.RuneSelf {
					ascii += string(r)
				}
			}
		}
		// Ten digits passing Modulus 11, and only digits of another script glued on besides.
		if count < 10 || count == len(ascii) && (count != 10 || !ValidNHSNumber(ascii)) {
			t.Fatalf("%q: span %q is not an NHS number", in, in[sp[0]:sp[1]])
		}
	}
	b.WriteString(in[last:])
	if b.String() != out {
		t.Fatalf("%q: output %q is not the input with its spans %v replaced", in, out, spans)
	}
}

// nhsByteSpans returns the byte spans RedactText replaces in s.
func nhsByteSpans(s string) [][2]int {
	u := appendView(nil, s)
	var out [][2]int
	for _, sp := range appendNHSNumbers(nil, u) {
		a, b := byteSpan(s, u, sp.first, sp.last)
		out = append(out, [2]int{a, b})
	}
	return out
}

// visible is the NFKC form of s without the characters that do not show: format characters,
// marks, variation selectors, default-ignorable characters and controls other than white
// space. It is the tests' own reading of what text renders as, written apart from the view.
func visible(s string) string {
	var b strings.Builder
	for _, r := range norm.NFKC.String(s) {
		switch {
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Mn, r), unicode.Is(unicode.Me, r),
			unicode.Is(unicode.Variation_Selector, r), unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r),
			unicode.IsControl(r) && !unicode.IsSpace(r):
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// asciiDigitRuns returns the maximal runs of ASCII digits in s.
func asciiDigitRuns(s string) []string {
	var runs []string
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		runs = append(runs, s[i:j])
		i = j
	}
	return runs
}

func BenchmarkRedactText(b *testing.B) {
	clean := strings.Repeat("Scheduled IV antibiotic dose given about four hours late. ", 20)
	dirty := clean + "Patient 943 476 5919 was moved to bed 12."
	b.Run("clean", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(clean)))
		for b.Loop() {
			RedactText(clean)
		}
	})
	b.Run("one-number", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(dirty)))
		for b.Loop() {
			RedactText(dirty)
		}
	})
}
