package forwarder

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// TestSentAs reads the event type, date and location from real mapped payloads of both
// taxonomy versions (the mapper's goldens).
func TestSentAs(t *testing.T) {
	for _, tc := range []struct{ dir, typ string }{
		{"age-days-v5", "incident"},
		{"agents-all-v6", ""},
	} {
		b, err := os.ReadFile(filepath.Join("..", "fhir", "testdata", tc.dir, "want.json"))
		if err != nil {
			t.Fatal(err)
		}
		got := sentAs(b)
		if got.EventDate == "" || got.Location != "RRK" || (tc.typ != "" && got.EventType != tc.typ) || got.EventType == "" {
			t.Errorf("%s: got %+v, want a date, location RRK and an event type", tc.dir, got)
		}
	}
	if got := sentAs([]byte(`not json`)); got.EventType != "" || got.EventDate != "" || got.Location != "" {
		t.Errorf("garbage: got %+v, want nothing", got)
	}
}

// FuzzSentAs: any payload gives a summary without panicking, each part short and valid text.
func FuzzSentAs(f *testing.F) {
	for _, dir := range []string{"age-days-v5", "agents-all-v6"} {
		if b, err := os.ReadFile(filepath.Join("..", "fhir", "testdata", dir, "want.json")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"contained":[{"resourceType":"Location","extension":[{"url":"x","extension":[{"url":"Organisation","valueCode":7}]}]}]}`))
	f.Add([]byte(`{"date":"` + string(make([]byte, 100)) + `","event":{"coding":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := sentAs(b)
		for _, v := range []string{s.EventType, s.EventDate, s.Location} {
			if len(v) > 40 {
				t.Fatalf("part %q longer than 40 bytes", v)
			}
			if utf8.Valid(b) && !utf8.ValidString(v) {
				t.Fatalf("part %q is not valid UTF-8 though the payload is", v)
			}
		}
	})
}
