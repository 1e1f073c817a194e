package privacy

import (
	"strings"
	"testing"
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
		{"separator at end", "943 476 591 9", "943 476 591 9", 0},
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
		{"a run ends where its script changes", "0000000000\u07c8", p + "\u07c8", 1},
		{"digits of two scripts glued together are not one number", "94３4765919", "94３4765919", 0},
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
		{"two-digit groups", "94 34 76 59 19", "94 34 76 59 19", 0},
		{"double space", "943  476 5919", "943  476 5919", 0},
		{"two hyphens", "943--476--5919", "943--476--5919", 0},
		{"space and hyphen", "943 -476 -5919", "943 -476 -5919", 0},
		{"other punctuation", "943/476/5919", "943/476/5919", 0},
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
		if got := strings.Count(out, p) - strings.Count(in, p); got != n {
			t.Fatalf("got %d new placeholders, want %d (count)", got, n)
		}
		if ContainsNHSNumber(out) {
			t.Fatalf("output %q still contains an NHS number", out)
		}
		if again, m := RedactText(out); m != 0 || again != out {
			t.Fatalf("second pass redacted %d more, want 0", m)
		}
		// Independent oracle: every maximal run of exactly ten contiguous
		// ASCII digits that passes Modulus 11 must be gone.
		for _, run := range digitRuns(out) {
			if ValidNHSNumber(run) {
				t.Fatalf("output %q keeps the valid run %q", out, run)
			}
		}
	})
}

// digitRuns returns the maximal runs of ASCII digits in s.
func digitRuns(s string) []string {
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
