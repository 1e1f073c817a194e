package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParseIncident protects the front door of the gateway: every adapter hands the bytes it
// received (an HTTP body, a CSV row or database row turned into JSON) to ParseIncident, and
// the answer decides whether an incident is sent to the national service or quarantined with
// its reasons. For any bytes:
//
//   - it returns, never panics;
//   - with no problems, it returns an incident that validates again, and that encodes to JSON
//     which parses, again without problems, to the same incident: what is stored and replayed
//     is what was checked;
//   - with problems, each one names the field it is about or says what is wrong with the
//     body as a whole, since the sender must be able to find what to fix.
//
// The golden cases in testdata/*/input.json are the seeds, with the broken shapes senders
// really produce; further regression inputs live in testdata/fuzz/FuzzParseIncident.
func FuzzParseIncident(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*/input.json")
	for _, p := range inputs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		``, ` `, `null`, `[]`, `"incident"`, `{`, `{}`, `{"source":"datix"}{}`, `{"source":"datix"} x`,
		"\xEF\xBB\xBF{\"source\":\"datix\"}",
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"Bed rail loose"}`,
		`{"source":"datix","local_id":"A1","event_type":"incident","occurred_at":"2025-03-14T10:00:00+01:00","description":"x","revision":2}`,
		`{"SOURCE":"datix","Local_ID":"A1","event_type":"risk","description":"x"}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","revision":1.5}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","revision":1e400}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","patients":[{"nhs_number":9434765919}]}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","patients":null,"agents":{"none":true}}`,
		`{"source":"datix","local_id":"A\u0000","event_type":"risk","description":"\ud800"}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"CafÃ© â€™"}`,
		"{\"source\":\"datix\",\"local_id\":\"A1\",\"event_type\":\"risk\",\"description\":\"caf\xe9\"}",
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","\u00e9":"x"}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","location":"RRK"}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","patients":[[{}]]}`,
		`{"a":{"b":{"c":{"d":{"e":[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]}}}}}`,
	} {
		f.Add([]byte(s))
	}
	opt := ParseOptions{Now: goldenNow}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, probs := ParseIncident(data, opt)
		if len(probs) > 0 {
			for _, p := range probs {
				if p.Field == "" && !strings.HasPrefix(p.Message, "body ") && !strings.HasPrefix(p.Message, "malformed JSON") {
					t.Fatalf("problem %q names no field and does not say what is wrong with the body", p.Message)
				}
				if strings.TrimSpace(p.Message) == "" {
					t.Fatalf("problem on %q without a message", p.Field)
				}
			}
			return
		}
		if in == nil {
			t.Fatal("no problems and no incident")
		}
		if ps := in.Validate(opt); len(ps) > 0 {
			t.Fatalf("accepted incident does not validate again: %v", ps)
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("accepted incident does not encode: %v", err)
		}
		again, ps := ParseIncident(b, opt)
		if len(ps) > 0 {
			t.Fatalf("accepted incident, encoded again, is refused: %v\n%s", ps, b)
		}
		// What was kept is known fields only: encoded again, nothing is unknown.
		if len(again.Warnings) > 0 {
			t.Fatalf("accepted incident, encoded again, gives warnings: %v\n%s", again.Warnings, b)
		}
		if diff := cmp.Diff(in, again, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Incident{}, "Warnings")); diff != "" {
			t.Fatalf("incident changes when encoded and parsed again (-first +again):\n%s", diff)
		}
		for _, w := range in.Warnings {
			if w.Field == "" || strings.TrimSpace(w.Message) == "" {
				t.Fatalf("warning %q without a field or message", w)
			}
		}
	})
}
