package fhir

import "testing"

func TestDuplicateKey(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{"top level", `{"source":"a","local_id":"x","source":"b"}`, "source"},
		{"case folded", `{"description":"a","Description":"b"}`, "Description"},
		{"escaped", `{"source":"a","sourc\u0065":"b"}`, "source"},
		{"nested", `{"location":{"organisation":"RRK","organisation":"RRX"}}`, "location.organisation"},
		{"in array", `{"patients":[{"sex":"male"},{"sex":"male","sex":"female"}]}`, "patients[1].sex"},
		{"string with braces", `{"a":"{\"a\":1,\"a\":2}","b":"]"}`, ""},
		{"same key in sibling objects", `{"p":[{"x":1},{"x":1}],"q":{"x":1}}`, ""},
		{"malformed", `{"a":1,"a"`, "a"},
		{"truncated", `{"a":{"b":`, ""},
		{"not an object", `[1,2,3]`, ""},
		{"garbage", `{"a" 1 "a":2}`, ""},
		{"empty", ``, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := duplicateKey([]byte(c.in)); got != c.want {
				t.Errorf("duplicateKey(%s) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestParseIncidentRefusesDuplicateKeys(t *testing.T) {
	_, probs := ParseIncident([]byte(`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","source":"other"}`), ParseOptions{})
	if len(probs) != 1 || probs[0].Field != "source" {
		t.Fatalf("got problems %v, want one problem on source", probs)
	}
}

func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":[{"b":"\""}]}`, `[`, `{"\u0000":1}`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = duplicateKey(data) // must not panic or loop
	})
}
