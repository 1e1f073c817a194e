package fhir

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzAppendUnquoted: the walker reads keys and strings as encoding/json does, or the
// duplicate-key and encoding checks would look at other text than the decoder keeps.
func FuzzAppendUnquoted(f *testing.F) {
	for _, s := range []string{`a`, `\u0061`, `\ud83d\ude00`, `\ud800`, `\ud800\u0041`, `\udc00\ud800`, `\'`, `\/\b\f\n\r\t\\\"`,
		"caf\xe9", "\xff\xfe", `\u00c3\u00a9`, `\uD83D\uDE00`, `\u12`, `x\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var want string
		if json.Unmarshal([]byte(`"`+body+`"`), &want) != nil {
			return // not a JSON string: the decoder refuses the document
		}
		if got := string(appendUnquoted(nil, []byte(body))); got != want {
			t.Fatalf("appendUnquoted(%q) = %q, want %q as encoding/json reads it", body, got, want)
		}
	})
}

func TestEncodingProblems(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"clean", `{"a":"café","b":["x",{"c":"ü"}]}`, nil},
		{"double-encoded value", `{"a":{"b":["ok","cafÃ©"]}}`, []string{"a.b[1]: looks double-encoded (UTF-8 read as Windows-1252 and encoded again); send UTF-8 only"}},
		{"escaped double-encoding", `{"a":"caf\u00c3\u00a9"}`, []string{"a: looks double-encoded (UTF-8 read as Windows-1252 and encoded again); send UTF-8 only"}},
		{"invalid UTF-8", "{\"a\":\"caf\xe9\"}", []string{"a: is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"}},
		{"C1 control", `{"a":"x\u0085"}`, []string{"a: holds C1 control characters: the text mixes encodings (Windows-1252 read as Latin-1?); send UTF-8 only"}},
		{"key at the top", "{\"caf\xe9\":1}", []string{"body has a key that is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"}},
		{"nested key", "{\"p\":[{\"caf\xe9\":1}]}", []string{"p[0]: has a key that is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"}},
		{"a value under a garbled key is named by it", "{\"k\xe9\":\"\xe9\"}", []string{
			"body has a key that is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only",
			"k\ufffd: is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"}},
		{"empty key", "{\"\":\"\xe9\"}", []string{"(empty key): is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"}},
		{"the document is a string", "\"\xe9\"", []string{"body is not valid UTF-8 or holds a replacement character: the text mixes encodings; send UTF-8 only"}},
		{"malformed: left to the decoder", "{\"a\":\"\xe9\"", nil},
		{"data after the value: left to the decoder", "{\"a\":\"\xe9\"} x", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, problemStrings(encodingProblems([]byte(tc.in))), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseIncidentBoundsHostileBodies: bodies built to make the gateway work get short
// answers. A list of millions of entries is refused before the decoder reads it, and a body
// of millions of values of the wrong type lists the first maxTypeProblems of them.
func TestParseIncidentBoundsHostileBodies(t *testing.T) {
	list := func(field, entry string, n int) string {
		return `{` + baseIncident + `,"` + field + `":[` + strings.TrimSuffix(strings.Repeat(entry+",", n), ",") + `]}`
	}
	t.Run("long list", func(t *testing.T) {
		_, ps := ParseIncident([]byte(list("safety_challenges", `"1"`, 200_000)), ParseOptions{Now: goldenNow})
		want := []string{"safety_challenges: has more than 1000 entries, far more than any list takes"}
		if diff := cmp.Diff(want, problemStrings(ps)); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	t.Run("long nested list", func(t *testing.T) {
		body := `{` + baseIncident + `,"Agents":{"medication_problem":{"factors":[` + strings.TrimSuffix(strings.Repeat(`"x",`, 5000), ",") + `]}}}`
		_, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
		want := []string{"agents.medication_problem.factors: has more than 1000 entries, far more than any list takes"}
		if diff := cmp.Diff(want, problemStrings(ps)); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	t.Run("long unknown list is the decoder's to skip", func(t *testing.T) {
		_, ps := ParseIncident([]byte(list("extra", `1`, 200_000)), ParseOptions{Now: goldenNow})
		if len(ps) != 1 || ps[0].Field != "occurred_at" {
			t.Errorf("got %v, want only the missing occurred_at", ps)
		}
	})
	t.Run("many wrong types", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{` + baseIncident + `,"occurred_at":"2025-03-14","patients":[`)
		for i := range 100 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"sex":1,"physical_harm":2,"age_years":"3"}`)
		}
		b.WriteString(`]}`)
		_, ps := ParseIncident([]byte(b.String()), ParseOptions{Now: goldenNow})
		if len(ps) != maxTypeProblems+1 {
			t.Fatalf("got %d problems, want %d", len(ps), maxTypeProblems+1)
		}
		if got, want := ps[0].String(), "patients[0].age_years: must be a whole number"; got != want {
			t.Errorf("first problem: got %q, want %q", got, want)
		}
		if got, want := ps[len(ps)-1].String(), "body has more values of the wrong type than the "+strconv.Itoa(maxTypeProblems)+" listed"; got != want {
			t.Errorf("last problem: got %q, want %q", got, want)
		}
	})
}
