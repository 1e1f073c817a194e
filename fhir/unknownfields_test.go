package fhir

import (
	"fmt"
	"strings"
	"testing"
)

// TestFieldWarningsAreBounded: a body of many unknown keys gets the first maxFieldWarnings
// named and one warning counting the rest, so a hostile body costs no suggestion work per key.
func TestFieldWarningsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"source":"datix","local_id":"B-1","event_type":"risk","description":"d"`)
	for i := range 150 {
		fmt.Fprintf(&b, `,"extra_%d":1`, i)
	}
	b.WriteString("}")
	ws := unknownFields([]byte(b.String()))
	if len(ws) != maxFieldWarnings+1 {
		t.Fatalf("got %d warnings, want %d named and one summary", len(ws), maxFieldWarnings)
	}
	if last := ws[len(ws)-1]; last.Message != "50 more unknown or misspelt fields not listed" {
		t.Errorf("summary: got %q", last.Message)
	}
}

// TestUnlistedKeysAreStillFollowed: past the listed warnings the scan still follows the
// structure as encoding/json decodes it, so a misspelt field inside a field named with other
// letter case is counted too.
func TestUnlistedKeysAreStillFollowed(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"source":"datix","local_id":"B-1","event_type":"risk","description":"d"`)
	for i := range maxFieldWarnings + 50 {
		fmt.Fprintf(&b, `,"extra_%d":1`, i)
	}
	b.WriteString(`,"PATIENTS":[{"sex":"female","physicalharm":"x"}]}`)
	in, ps := ParseIncident([]byte(b.String()), ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if len(in.Patients) != 1 || in.Patients[0].Sex != "female" {
		t.Fatalf("decoded patients %+v, want the one under PATIENTS", in.Patients)
	}
	ws := in.Warnings
	if last := ws[len(ws)-1]; last.Message != "52 more unknown or misspelt fields not listed" {
		t.Errorf("summary: got %q, want the 50 extra keys, PATIENTS and physicalharm", last.Message)
	}
}
