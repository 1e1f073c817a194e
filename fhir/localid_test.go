package fhir

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseIncidentLocalID: the local id is listed on the status page, in the API and the
// CLI, so an NHS number in any spelling, control characters and characters that do not show
// (which make two different ids look alike) are refused, by every adapter, since each
// parses its incidents here (issue 15, item 4). The problem never quotes the value.
func TestParseIncidentLocalID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // part of the problem on local_id; "" for none
	}{
		{"DX-1", ""}, {"INC/2024/00123", ""}, {"12345", ""}, {"Ward 7 #12", ""}, {"9434765918", ""},
		{"Ünïcødé-ïd", ""}, {strings.Repeat("x", MaxLocalID), ""},
		{"", "is required"}, {"  ", "is required"},
		{strings.Repeat("x", MaxLocalID+1), "at most 128 characters"},
		{"9434765919", "NHS number"}, {"DX-943-476-5919", "NHS number"}, {"943 476 5919", "NHS number"},
		{"９４３４７６５９１９", "NHS number"}, {"943\u00ad476\u00ad5919", "invisible"},
		{"DX-1\u0000", "control"}, {"DX-1\u001b[31m", "control"}, {"DX-1\u0085", "control"}, {"DX\t1", "control"},
		{"DX-1\u202e", "invisible or bidirectional"}, {"DX\u200b-1", "invisible or bidirectional"},
		{"DX-1\u2066x\u2069", "invisible or bidirectional"}, {"\ufeffDX-1", "invisible or bidirectional"},
		{"D\u00adX-1", "invisible or bidirectional"}, {"DX-1\u200e", "invisible or bidirectional"},
	} {
		quoted, _ := json.Marshal(tc.id)
		body := `{"source":"datix","local_id":` + string(quoted) + `,"event_type":"risk","description":"x"}`
		_, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
		var got []string
		for _, p := range ps {
			if p.Field == "local_id" {
				got = append(got, p.Message)
			}
			if len(tc.id) > 3 && strings.Contains(p.String(), tc.id) {
				t.Errorf("%q: problem %q quotes the id", tc.id, p)
			}
		}
		if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
			t.Errorf("%q: got %q, want a problem containing %q", tc.id, got, tc.want)
		}
	}
}
