package httppush

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// referenceCanonical is how contentHash made its canonical JSON until canonicalJSON replaced
// it: decode into an any and encode again. Stored records are named by its hash, so the two
// must agree byte for byte on every body.
func referenceCanonical(body []byte) []byte {
	var v any
	if err := json.Unmarshal(body, &v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			return b
		}
	}
	return body
}

func canonicalOrBody(body []byte) []byte {
	if c, ok := canonicalJSON(body); ok {
		return c
	}
	return body
}

var canonSeeds = []string{
	`{"source":"datix","local_id":"A1","event_type":"incident","description":"Fall"}`,
	` { "b" : [1, 2.50, -0, 1e2, 1E-7, 0.000001, 1e21, 123456789012345678901234567890, -1.5e-300] , "a" : {"z":null,"y":true,"x":false} } `,
	`{"a":1,"a":2,"A":3}`,
	`{"k":"<b>&amp;</b>","\u00e9":"caf\u00e9","e\u0301":"\ud83d\ude00","lone":"\ud800","ctl":"\u0001\b\f\n\r\t","ls":"\u2028\u2029","sl":"\/"}`,
	"{\"bad\":\"\xff\xfe\",\"\xc3\":1}",
	`{"big":1e400}`,
	`{"deep":[[[[{"a":[{"b":[]}]}]]]],"empty":{},"e2":[],"s":""}`,
	`[3,{"b":1,"a":2},"x"]`,
	`"just a string"`,
	`12`,
	`{"unterminated":`,
	`not json`,
	``,
	`{"a":1} {"b":2}`,
	`{"x":"a\"b\\c"}`,
	`{"n":-0.0,"m":0e5,"p":1.0000000000000002,"q":5e-324,"r":1.7976931348623157e308}`,
}

// FuzzCanonicalJSON: canonicalJSON agrees with the decode-and-encode it replaced on any
// bytes, the golden incidents of the mapper among the seeds.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range canonSeeds {
		f.Add([]byte(s))
	}
	inputs, _ := filepath.Glob("../../fhir/testdata/*/input.json")
	for _, p := range inputs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, got := referenceCanonical(body), canonicalOrBody(body)
		if !bytes.Equal(want, got) {
			t.Fatalf("body %q:\ncanonicalJSON %q\nreference     %q", body, got, want)
		}
	})
}

// TestCanonicalJSONDeepNesting: a deeply nested body (within encoding/json's limit) is read
// in time linear in its size, and agrees with the reference.
func TestCanonicalJSONDeepNesting(t *testing.T) {
	const depth = 4000 // 8,000 levels: encoding/json reads up to 10,000
	body := bytes.Repeat([]byte(`{"a":[`), depth)
	body = append(body, `"x"`...)
	body = append(body, bytes.Repeat([]byte(`]}`), depth)...)
	got, ok := canonicalJSON(body)
	if !ok {
		t.Fatal("canonicalJSON refused a body encoding/json reads")
	}
	if want := referenceCanonical(body); !bytes.Equal(got, want) {
		t.Errorf("deep nesting: the two disagree (%d and %d bytes)", len(got), len(want))
	}
}

// BenchmarkCanonicalJSON compares canonicalJSON with the decode and encode it replaced, on a
// 16 MiB body with a million keys.
func BenchmarkCanonicalJSON(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"source":"datix","local_id":"KEYS-1","event_type":"risk","description":"x"`)
	for i := range 1_000_000 {
		buf.WriteString(`,"k` + strconv.Itoa(i) + `xxxxx":0`)
	}
	buf.WriteByte('}')
	body := buf.Bytes()
	b.Run("canonicalJSON", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			canonicalJSON(body)
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			referenceCanonical(body)
		}
	})
}
