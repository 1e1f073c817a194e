package privacy

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

var testKnown = Known{
	NHSNumbers: []string{"943 476 5919"},
	LocalIDs:   []string{"RRK1023456", "1", "2024", "MRN001", "123456", "A-1"},
	BirthDates: []string{"1975-03-01", "not a date"},
	Names:      []string{"Jane", "Doe-Smith", "José", "O'Brien", "Li", "J", "Zoë Anne"},
}

const (
	pID   = "[REDACTED PATIENT ID]"
	pDOB  = "[REDACTED DATE OF BIRTH]"
	pName = "[REDACTED NAME]"
)

func TestRedactorDatesOfBirth(t *testing.T) {
	r := NewRedactor(testKnown)
	for _, dob := range []string{
		"01/03/1975", "1/3/75", "1/3/1975", "01.03.1975", "01-03-1975", "1-3-75", "01 03 1975", "1 3 75",
		"01/03/75", "1975-03-01", "1975/3/1", "1975.03.01", "1975 03 01",
		"01031975", "19750301", "010375", "750301",
		"03/01/1975", "3/1/75", "03011975", "030175",
		"1 March 1975", "1st March 1975", "1st of March 1975", "1st of March, 1975", "1 Mar 1975", "1 Mar. 1975",
		"1-Mar-1975", "01-MAR-75", "1 march 75", "01 MARCH 1975", "1March1975",
		"March 1 1975", "March 1, 1975", "Mar 1st 1975", "Mar. 1, 75", "MAR 01 1975",
		"1975 Mar 1", "1975-MAR-01", "1975 March 1st",
		"０１/０３/１９７５", "01/0\u200b3/1975", "1ˢᵗ March 1975", "01\u2009/\u200903/\u20091975", "01 / 03 / 1975",
		"01—03—1975", "01_03_1975", "01\n03\n1975",
	} {
		in := "Patient (DOB " + dob + ") fell."
		out, c := r.Text(in)
		if want := "Patient (DOB " + pDOB + ") fell."; out != want || c[KindDateOfBirth] != 1 || c.Total() != 1 {
			t.Errorf("%q: got %q %v, want %q and one date of birth", dob, out, c, want)
		}
	}
	for _, other := range []string{
		"01/03/1976", "1 March 1976", "2 March 1975", "11/03/1975", "March 1975", "1/3", "01/03/19750",
		"101/03/1975", "01/03/1975 is not 1/4/75", "1975", "March", "Mar 11 1975", "01/13/1975", "1st April 1975",
	} {
		out, _ := r.Text(other)
		if strings.Contains(other, "is not") {
			if want := pDOB + " is not 1/4/75"; out != want {
				t.Errorf("%q: got %q, want %q", other, out, want)
			}
			continue
		}
		if out != other {
			t.Errorf("%q: got %q, want it unchanged", other, out)
		}
	}
}

func TestRedactorNames(t *testing.T) {
	r := NewRedactor(testKnown)
	for _, tc := range []struct{ in, want string }{
		{"Jane fell", pName + " fell"},
		{"JANE fell", pName + " fell"},
		{"jane's bed", pName + "'s bed"},
		{"Ｊａｎｅ fell", pName + " fell"},
		{"Ja\u200bne fell", pName + " fell"},
		{"Ja\u00adne fell", pName + " fell"},
		{"Mrs Doe-Smith", "Mrs " + pName + "-" + pName},
		{"Mrs Smith", "Mrs " + pName},
		{"Jose", pName},
		{"JOSÉ", pName},
		{"Jose\u0301", pName},
		{"José's", pName + "'s"},
		{"Mr O'Brien", "Mr O'" + pName},
		{"Zoe-Anne", pName + "-" + pName},
		{"ZOË", pName},
		{"Mr Li and Lily", "Mr " + pName + " and Lily"},
		{"Janet and Doe2", "Janet and " + pName + "2"},
		{"J. Bloggs", "J. Bloggs"},     // one-letter names are left
		{"Janeway", "Janeway"},         // a name inside a longer word is left
		{"Jane\u0301t", "Jane\u0301t"}, // marks do not split words
	} {
		if got, _ := r.Text(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactorLocalIDs(t *testing.T) {
	r := NewRedactor(testKnown)
	for _, tc := range []struct{ in, want string }{
		{"MRN RRK1023456.", "MRN " + pID + "."},
		{"mrn rrk1023456", "mrn " + pID},
		{"(RRK 1023456)", "(" + pID + ")"},
		{"RRK-102-3456", pID},
		{"RRK\u200b1023456", pID},
		{"ＲＲＫ１０２３４５６", pID},
		{"MRN:RRK1023456;", "MRN:" + pID + ";"},
		{"XRRK1023456", "XRRK1023456"}, // inside a longer id
		{"RRK10234567", "RRK10234567"}, // inside a longer id
		{"RRK102345", "RRK102345"},     // part of it
		{"MRN001 and mrn 001", pID + " and " + pID},
		{"ref 123456, 1234567", "ref " + pID + ", 1234567"},
		{"bed 1, 2024 audit", "bed 1, 2024 audit"}, // ids "1" and "2024" are too short to redact
		{"A1 and A-1", "A1 and A-1"},               // so is "A-1"
	} {
		if got, _ := r.Text(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactorKnownNHSNumbers(t *testing.T) {
	r := NewRedactor(testKnown)
	for _, tc := range []struct{ in, want string }{
		{"9434765919", p},
		{"ref 19434765919", "ref " + p}, // in a longer number: known, so removed with it
		{"94347659190", p},              // though RedactText leaves both alone
		{"000000000094347659190", p},    // what is left of a run could read as a number
		{"1 9434 76591 9 2", "1 " + p + " 2"},
		{"94347659 19", p},
		{"9434765918", "9434765918"},
	} {
		if got, _ := r.Text(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactorCountsByKind(t *testing.T) {
	r := NewRedactor(testKnown)
	in := "Jane Doe-Smith (DOB 01/03/1975, MRN RRK1023456, NHS 943 476 5919, also 401 023 2137) told Jane."
	out, c := r.Text(in)
	want := pName + " " + pName + "-" + pName + " (DOB " + pDOB + ", MRN " + pID + ", NHS " + p + ", also " + p + ") told " + pName + "."
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if c != (Counts{KindNHSNumber: 2, KindLocalID: 1, KindDateOfBirth: 1, KindName: 4}) || c.Total() != 8 {
		t.Errorf("got counts %v, want 2 NHS numbers, 1 local id, 1 date of birth, 4 names", c)
	}
	for _, k := range Kinds() {
		if k.String() == "unknown" || strings.Contains(k.String(), " ") {
			t.Errorf("kind %d has label %q", k, k)
		}
	}
}

// TestRedactorPlaceholderWordsAsNames: names the redactor is told may be words of its own
// placeholders; a second pass must still find nothing.
func TestRedactorPlaceholderWordsAsNames(t *testing.T) {
	r := NewRedactor(Known{Names: []string{"Redacted Name", "Number", "Birth", "Patient", "NHS", "DOB", "ID", "Date of"}, NHSNumbers: []string{"9434765919"}})
	out, c := r.Text("Name: Patient Number, born 9434765919 date of birth")
	if c.Total() == 0 {
		t.Fatal("nothing redacted")
	}
	if again, c2 := r.Text(out); again != out || c2.Total() != 0 {
		t.Errorf("second pass changed %q to %q (%v)", out, again, c2)
	}
}

// TestRedactorNeverOverLimit: placeholders are longer than what they replace, but a text
// never ends up longer than MaxText (or than it was). Issue 15, item 3.
func TestRedactorNeverOverLimit(t *testing.T) {
	r := NewRedactor(testKnown)
	for _, tc := range []struct {
		name, unit string
		short      string
	}{
		{"NHS numbers", "9434765919 ", "[NHS] "},
		{"dates of birth", "1/3/75 ", "[DOB] "},
		{"local ids", "MRN001 ", "[ID] "},
		{"names", "Jane ", "[N] "},
		{"two-letter names", "Li ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Repeat(tc.unit, MaxText/utf8.RuneCountInString(tc.unit))
			out, c := r.Text(in)
			if n := utf8.RuneCountInString(out); n > MaxText {
				t.Errorf("got %d characters, want at most %d", n, MaxText)
			}
			if c.Total() == 0 || r.Contains(out) {
				t.Errorf("got %v, want everything redacted and nothing left", c)
			}
			if tc.short != "" && !strings.HasPrefix(out, tc.short+tc.short) {
				t.Errorf("got %.40q..., want the short placeholder %q", out, tc.short)
			}
			if tc.short == "" && (!strings.HasSuffix(out, "[N]…") && !strings.HasSuffix(out, " …")) {
				t.Errorf("got ...%q, want the text cut between words, ending in …", out[len(out)-20:])
			}
		})
	}
	// A text already over MaxText never grows.
	long := strings.Repeat("x", MaxText) + " Jane"
	if out, _ := r.Text(long); utf8.RuneCountInString(out) > utf8.RuneCountInString(long) {
		t.Errorf("a text over MaxText grew to %d characters", utf8.RuneCountInString(out))
	}
	// Below the limit the full placeholders are used.
	if out, _ := r.Text("Jane"); out != pName {
		t.Errorf("got %q, want %q", out, pName)
	}
}

func TestRedactorResource(t *testing.T) {
	r := NewRedactor(Known{Names: []string{"Patient Azure"}, BirthDates: []string{"1975-03-01"}})
	var doc map[string]any
	in := `{"resourceType":"AdverseEvent","description":"Azure fell, DOB 1/3/75","meta":{"profile":["https://x/azure/patient-5"]},` +
		`"contained":[{"resourceType":"Patient","id":"patient1","extension":[{"url":"https://azure/x","extension":[` +
		`{"url":"ClinicalOutcome","valueString":"Azure recovered"},{"url":"X","valueCode":"azure"},{"url":"DrugsInvolved","valueString":"9434765919"}]}]}],` +
		`"note":["Azure 9434765919"]}`
	if err := json.Unmarshal([]byte(in), &doc); err != nil {
		t.Fatal(err)
	}
	c := r.Resource(doc)
	got, _ := json.Marshal(doc)
	want := `{"contained":[{"extension":[{"extension":[{"url":"ClinicalOutcome","valueString":"[REDACTED NAME] recovered"},{"url":"X","valueCode":"azure"},{"url":"DrugsInvolved","valueString":"[REDACTED NHS NUMBER]"}],"url":"https://azure/x"}],"id":"patient1","resourceType":"Patient"}],` +
		`"description":"[REDACTED NAME] fell, DOB [REDACTED DATE OF BIRTH]","meta":{"profile":["https://x/azure/patient-5"]},"note":["Azure [REDACTED NHS NUMBER]"],"resourceType":"AdverseEvent"}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if c != (Counts{KindNHSNumber: 2, KindDateOfBirth: 1, KindName: 2}) {
		t.Errorf("got counts %v", c)
	}
}

func TestNewRedactorRules(t *testing.T) {
	r := NewRedactor(Known{
		NHSNumbers: []string{"123", "943-476-5919", "９４３４７６５９１９", ""},
		LocalIDs:   []string{"", "1", "12345", "123456", "AB1", "AB12", "A-B-1-2"},
		BirthDates: []string{"1975-3-1", "01/03/1975", "1975-02-30", "2000-02-29"},
		Names:      []string{"", "J", "J.R.R.", "Mary-Jo", "  "},
	})
	if len(r.nhs) != 1 {
		t.Errorf("got %d NHS numbers, want 1 (the same number twice, and junk)", len(r.nhs))
	}
	if n := r.ids.size(); n != 2 {
		t.Errorf("got %d ids, want 2 (123456 and AB12, given twice)", n)
	}
	for in, want := range map[string]string{"123456 AB12 ab-12 12345 AB1": pID + " " + pID + " " + pID + " 12345 AB1"} {
		if got, _ := r.Text(in); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if _, ok := r.dobs.full[date{2000, 2, 29}]; !ok || len(r.dobs.full) != 1 {
		t.Errorf("got dates %v, want only 2000-02-29", r.dobs.full)
	}
	if _, ok := r.names["mary"]; !ok || len(r.names) != 2 {
		t.Errorf("got names %v, want mary and jo", r.names)
	}
}

// FuzzRedactor: for any text, the known identifiers' redaction changes nothing but the spans
// it replaces, each by its kind's placeholder; leaves none of the names or NHS numbers it
// knows, as an independent reading of the output finds them; and a second pass finds nothing.
func FuzzRedactor(f *testing.F) {
	for _, s := range []string{
		"Jane Doe-Smith (DOB 01/03/1975, MRN RRK1023456) 943 476 5919",
		"JANE ja\u200bne Ｊａｎｅ José JOSE\u0301", "1st of March, 1975 Mar. 1, 75 010375", "rrk-102-3456 RRK10234567",
		"19434765919 94347659190", "[REDACTED NAME]Jane[N]Li", strings.Repeat("Li ", 50), "Zoë Anne zoe-anne",
	} {
		f.Add(s)
	}
	r := NewRedactor(testKnown)
	f.Fuzz(func(t *testing.T, in string) {
		out, c := r.Text(in)
		if c.Total() == 0 && out != in {
			t.Fatalf("got %q with nothing counted, want the input unchanged", out)
		}
		if again, c2 := r.Text(out); again != out || c2.Total() != 0 {
			t.Fatalf("second pass over %q redacted %v more", out, c2)
		}
		if r.Contains(out) {
			t.Fatalf("output %q still holds an identifier", out)
		}
		if n := utf8.RuneCountInString(out); n > max(MaxText, utf8.RuneCountInString(in)) {
			t.Fatalf("output has %d characters, more than the input and MaxText", n)
		}
		// Nothing but the spans changes.
		u := appendView(nil, in)
		spans := mergeSpans(in, u, r.appendSpans(&scratch{units: u}, nil))
		var b strings.Builder
		last := 0
		var counted Counts
		for _, sp := range spans {
			b.WriteString(in[last:sp.first])
			b.WriteString(placeholders[sp.kind])
			last = sp.last
			counted[sp.kind]++
		}
		b.WriteString(in[last:])
		if b.String() != out || counted != c {
			t.Fatalf("%q: output %q is not the input with its spans replaced (%q)", in, out, b.String())
		}
		// Independent reading: no word of the output is a known name (accents folded), and no
		// run of its digits holds a known NHS number.
		words := strings.FieldsFunc(strings.ToLower(foldAccents(visible(out))), func(r rune) bool { return !unicode.IsLetter(r) })
		for _, w := range words {
			for _, name := range []string{"jane", "doe", "smith", "jose", "brien", "li", "zoe", "anne"} {
				if w == name && !strings.Contains(out, "[REDACTED "+strings.ToUpper(w)) {
					t.Fatalf("output %q keeps the name %q", out, w)
				}
			}
		}
		for _, run := range asciiDigitRuns(visible(out)) {
			if strings.Contains(run, "9434765919") {
				t.Fatalf("output %q keeps the known NHS number", out)
			}
		}
	})
}

// foldAccents removes the marks of NFD, the test's own accent folding.
func foldAccents(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
