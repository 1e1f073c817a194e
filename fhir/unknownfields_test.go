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
