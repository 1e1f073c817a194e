package fhir

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/psgw/psgw/fhir/taxonomy"
)

// TestCheckPayloadV6Strict is what the simulator inherits through CheckPayload: a v6 payload
// the builder made passes, and one with a made-up extension, a misspelled inner name or a
// repeated single-valued answer is refused.
func TestCheckPayloadV6Strict(t *testing.T) {
	data, err := os.ReadFile("testdata/worked-example-v5/input.json")
	if err != nil {
		t.Fatal(err)
	}
	in, ps := ParseIncident(data, ParseOptions{Now: goldenNow})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	prep := (&Builder{Version: 6, Codes: NewCodeMaps(6, goldenCodeMaps)}).Prepare(in)
	if prep.Payload == nil {
		t.Fatal(prep.Problems)
	}
	ext := func(doc map[string]any, id string) map[string]any {
		for _, e := range doc["extension"].([]any) {
			if m := e.(map[string]any); strings.HasSuffix(m["url"].(string), "/"+id) {
				return m
			}
		}
		t.Fatalf("no extension %s", id)
		return nil
	}
	addInner := func(m map[string]any, name string, v any) {
		m["extension"] = append(m["extension"].([]any), map[string]any{"url": name, "valueString": v})
	}
	tests := []struct {
		name   string
		change func(doc map[string]any)
		want   string // rule and path of the one problem
	}{
		{"as built", func(map[string]any) {}, ""},
		{"made-up extension", func(doc map[string]any) {
			doc["extension"] = append(doc["extension"].([]any), map[string]any{
				"url":       taxonomy.ExtensionURL(6, "adverse-event-wishes"),
				"extension": []any{map[string]any{"url": "Wish", "valueString": "x"}},
			})
		}, "unknown-extension extension[10]"},
		{"misspelled inner name", func(doc map[string]any) {
			addInner(ext(doc, "adverse-event-outcome-6"), "ImmediateAction", "x")
		}, "unknown-field extension[adverse-event-outcome-6].extension[1]"},
		{"single-valued answer repeated", func(doc map[string]any) {
			addInner(ext(doc, "adverse-event-outcome-6"), "ImmediateActions", "again")
		}, "cardinality extension[adverse-event-outcome-6].ImmediateActions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(prep.Payload, &doc); err != nil {
				t.Fatal(err)
			}
			tt.change(doc)
			var got []string
			for _, p := range CheckPayload(6, doc) {
				got = append(got, p.Rule+" "+p.Path)
			}
			if tt.want == "" && len(got) > 0 || tt.want != "" && (len(got) != 1 || got[0] != tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
