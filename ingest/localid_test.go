package ingest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/ingest"
)

func TestLocalIDProblem(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // part of the problem; "" for none
	}{
		{"DX-1", ""},
		{"W12345", ""},
		{"INC/2024/00123", ""},
		{"12345", ""},
		{"9434765918", ""}, // ten digits failing Modulus 11: not an NHS number
		{"", "empty"},
		{"   ", "empty"},
		{"Mrs Jane Doe (NHS 9434765919) found on floor", "white space"},
		{"Jane Doe", "white space"},
		{"DX-1\tx", "white space"},
		{"9434765919", "NHS-number-shaped"},
		{"DX-943-476-5919", "NHS-number-shaped"},
		{"DX-1\x00", "control"},
		{"DX-1\u0085", "white space"},
		{"DX\u200b-1", "invisible"},
		{"DX-1\u202e", "invisible"},
		{"\ufeffDX-1", "invisible"},
		{"943\u00ad476\u00ad5919", "invisible"},
		{"９４３４７６５９１９", "NHS-number-shaped"},
		{"DX-\xff", "not valid text"},
		{strings.Repeat("x", 129), "longer than 128"},
		{strings.Repeat("x", 128), ""},
		{strings.Repeat("é", 128), ""}, // characters, as the contract counts, not bytes
		{strings.Repeat("é", 129), "longer than 128"},
	} {
		got := ingest.LocalIDProblem(tc.id)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("LocalIDProblem(%q): got %q, want %q", tc.id, got, tc.want)
		}
		if strings.Contains(got, tc.id) && tc.id != "" && strings.TrimSpace(tc.id) != "" {
			t.Errorf("LocalIDProblem(%q): the problem %q quotes the value", tc.id, got)
		}
	}
}

// TestLocalIDProblemCoversValidate: what the pull adapters take as an incident's id is never
// an id that ParseIncident, which every adapter's incidents pass, refuses: the adapters make
// the same checks, and one more (white space, a sign of prose in the id column).
func TestLocalIDProblemCoversValidate(t *testing.T) {
	for _, id := range []string{
		"DX-1", "", " ", "9434765919", "943-476-5919", "９４３４７６５９１９", "943\u00ad4765919", "DX\u200b1", "DX\u202e1",
		"DX\u20661\u2069", "\ufeffDX1", "DX\u00001", "DX\u00851", "DX\u001b1", strings.Repeat("x", 129), "DX 1", "Ünïcødé",
	} {
		quoted, _ := json.Marshal(id)
		body := `{"source":"datix","local_id":` + string(quoted) + `,"event_type":"risk","description":"x"}`
		_, ps := fhir.ParseIncident([]byte(body), fhir.ParseOptions{})
		refused := false
		for _, p := range ps {
			refused = refused || p.Field == "local_id"
		}
		if refused && ingest.LocalIDProblem(id) == "" {
			t.Errorf("%q: ParseIncident refuses it as a local id, LocalIDProblem takes it", id)
		}
	}
}
