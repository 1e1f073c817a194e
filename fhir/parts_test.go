package fhir

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPartsDocMatchesBuild: Prepare's decoded-JSON form, taken from the complex extensions in
// their compact form, is the one Build's resource gives, for every golden case, problems or not.
func TestPartsDocMatchesBuild(t *testing.T) {
	for _, c := range loadGoldenCases(t) {
		in, ps := ParseIncident(c.input, ParseOptions{Now: goldenNow})
		if len(ps) > 0 {
			continue
		}
		compact := c.builder().build(in)
		built := c.builder().Build(in)
		if compact.Resource == nil || built.Resource == nil {
			continue
		}
		got, want := encodeDoc(nil, compact.Resource.doc()), encodeDoc(nil, built.Resource.doc())
		if string(got) != string(want) {
			t.Errorf("%s: the compact form's document differs from Build's:\n%s", c.dir, cmp.Diff(string(want), string(got)))
		}
	}
}
