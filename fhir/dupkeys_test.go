package fhir

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDuplicateKey(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{"top level", `{"source":"a","local_id":"x","source":"b"}`, "source"},
		{"case folded", `{"description":"a","Description":"b"}`, "Description"},
		{"upper case", `{"description":"a","DESCRIPTION":"b"}`, "DESCRIPTION"},
		// encoding/json matches keys to fields with Unicode simple case folding, so the long s
		// (U+017F) and the Kelvin sign (U+212A) are s and k to it (issue 15, item 6).
		{"long s", `{"description":"a","deſcription":"b"}`, "deſcription"},
		{"long s escaped", `{"description":"a","de\u017fcription":"b"}`, "deſcription"},
		{"kelvin sign", `{"risk":{},"RIS\u212a":{}}`, "RIS\u212a"},
		{"kelvin sign raw", `{"risk":{},"risK":{}}`, "risK"},
		{"folded before exact", `{"ſource":"a","source":"b"}`, "source"},
		{"escaped", `{"source":"a","sourc\u0065":"b"}`, "source"},
		{"escaped solidus", `{"a/b":1,"a\/b":2}`, "a/b"},
		{"surrogate pair", `{"\ud83d\ude00":1,"😀":2}`, "😀"},
		{"invalid utf-8 folds to the replacement character", "{\"a\xff\":1,\"a\xfe\":2}", "a\ufffd"},
		{"nested", `{"location":{"organisation":"RRK","organisation":"RRX"}}`, "location.organisation"},
		{"in array", `{"patients":[{"sex":"male"},{"sex":"male","sex":"female"}]}`, "patients[1].sex"},
		{"string with braces", `{"a":"{\"a\":1,\"a\":2}","b":"]"}`, ""},
		{"same key in sibling objects", `{"p":[{"x":1},{"x":1}],"q":{"x":1}}`, ""},
		{"same key in parent and child", `{"x":{"x":{"x":1}},"y":1}`, ""},
		{"different keys of one fold length", `{"ab":1,"aB2":1,"AC":1}`, ""},
		{"malformed", `{"a":1,"a"`, "a"},
		{"truncated", `{"a":{"b":`, ""},
		{"not an object", `[1,2,3]`, ""},
		{"garbage", `{"a" 1 "a":2}`, ""},
		{"empty", ``, ""},
		// The path goes into the 400 answer: an NHS number used as a key is not echoed.
		{"nhs number as a key", `{"x":{"9434765919":1,"9434765919":2}}`, "x.[REDACTED NHS NUMBER]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := duplicateKey([]byte(c.in)); got != c.want {
				t.Errorf("duplicateKey(%s) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// TestDuplicateKeyManyKeys covers the per-object set that replaced comparing each key with
// every earlier one: objects past the size where it starts, a duplicate far from its twin,
// and objects nested inside a large one.
func TestDuplicateKeyManyKeys(t *testing.T) {
	obj := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := range n {
			b.WriteString(`"k` + strconv.Itoa(i) + `":{"k` + strconv.Itoa(i) + `":1,"x":2},`)
		}
		b.WriteString(extra + `"end":1}`)
		return b.String()
	}
	for _, c := range []struct {
		name, in, want string
	}{
		{"large, no duplicate", obj(5000, ""), ""},
		{"large, duplicate of the first key at the end", obj(5000, `"K0":1,`), "K0"},
		{"large, duplicate of a middle key", obj(5000, `"k2500":1,`), "k2500"},
		{"large, folded duplicate", obj(5000, `"\u212a17":1,`), "\u212a17"},
		{"large inside large", `{"a":` + obj(3000, "") + `,"b":` + obj(3000, `"k1":1,`) + `}`, "b.k1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := duplicateKey([]byte(c.in)); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestDuplicateKeyAgreesWithDecoder: two keys count as the same exactly when encoding/json
// would decode them into the same field. encoding/json documents its matching as "case
// insensitive", which it implements as bytes.EqualFold of the unescaped keys.
func TestDuplicateKeyAgreesWithDecoder(t *testing.T) {
	keys := []string{"description", "Description", "DESCRIPTION", "deſcription", "DEſCRIPTION",
		"descriptionK", "descriptionk", "description\u212a", "descrıption", "descrİption", "dé", "DÉ", "ǅ", "ǆ", "Ǆ", "ß", "ẞ", "ss"}
	for _, a := range keys {
		for _, b := range keys {
			body := `{` + strconv.Quote(a) + `:1,` + strconv.Quote(b) + `:2}`
			var decoded struct {
				Description int `json:"description"`
			}
			_ = json.Unmarshal([]byte(body), &decoded)
			want := bytes.EqualFold([]byte(a), []byte(b))
			if _, got := duplicateKey([]byte(body)); got != want {
				t.Errorf("%s: duplicate %v, want %v", body, got, want)
			}
		}
	}
}

// millionKeyBodies are 16 MiB bodies (the largest the HTTP adapter takes at its highest
// configured limit) with a million keys each, in the shapes that cost the old checks most:
// all in one object (the duplicate-key check compared each key with every earlier one),
// escaped keys (each unescaped by a decode of its own; the encoding check decoded the whole
// body and sorted every object's keys), and many small objects.
func millionKeyBodies() []struct {
	name string
	body []byte
} {
	return keyBodies(1_000_000, 16<<20)
}

// keyBodies builds the hostile bodies with n keys in size bytes.
func keyBodies(n, size int) []struct {
	name string
	body []byte
} {
	head := `{"source":"datix","local_id":"A1","event_type":"risk","description":"x"`
	build := func(open, close string, key func(i int) string) []byte {
		var b bytes.Buffer
		b.Grow(size + 64)
		b.WriteString(head + open)
		room := size - len(head) - len(open) - len(close) - 1
		per, extra := room/n, room%n // the first extra keys take one byte more
		for i := range n {
			k := key(i)
			pad := per - len(k) - 5
			if i < extra {
				pad++
			}
			b.WriteByte(',')
			b.WriteString(`"` + k + strings.Repeat("x", max(0, pad)) + `":0`)
		}
		b.WriteString(close + `}`)
		return b.Bytes()
	}
	id := func(i int) string { return strconv.FormatInt(int64(i), 36) + "_" }
	flat := build("", "", id)
	return []struct {
		name string
		body []byte
	}{
		{"one-object", flat},
		{"one-object-duplicate-last", append(flat[:len(flat)-1:len(flat)-1], `,"SOURCE":"x"}`...)},
		{"escaped-keys", build("", "", func(i int) string { return `\u0061` + id(i) })},
		{"small-objects", build(`,"extra":[{"k":0`, `}]`, func(i int) string {
			if i%8 == 7 {
				return `e":0},{"` + id(i)
			}
			return id(i)
		})},
	}
}

// TestParseIncidentMillionKeys: a 16 MiB body with a million keys used to cost hours of CPU
// (issue 15, item 5). BenchmarkParseIncidentMillionKeys measures it (must: under 2 s); this
// test only guards against a return to super-linear time, with a bound that the race
// detector and a busy machine stay well inside but the old check could never meet.
func TestParseIncidentMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB bodies")
	}
	bodies := millionKeyBodies()
	if raceDetector {
		// The race detector slows parsing some 25 times, and a loaded machine more: a
		// tenth of the keys keeps the bound meaningful (quadratic checks took 11.7 s for
		// 80,000 keys without it) without making the bound a measure of the machine.
		// BenchmarkParseIncidentMillionKeys gives the real figure.
		bodies = keyBodies(100_000, 16<<20/10)
	}
	for _, c := range bodies {
		start := time.Now()
		in, probs := ParseIncident(c.body, ParseOptions{Now: goldenNow})
		if elapsed := time.Since(start); elapsed > 30*time.Second {
			t.Errorf("%s: parsing took %v, want well under 30s", c.name, elapsed)
		}
		wantDup := strings.Contains(c.name, "duplicate")
		if gotDup := len(probs) == 1 && strings.Contains(probs[0].Message, "more than once"); gotDup != wantDup {
			t.Errorf("%s: got problems %v, want a duplicate: %v", c.name, probs, wantDup)
		}
		if !wantDup && (in == nil || len(probs) != 0) {
			t.Errorf("%s: got problems %v, want none (unknown keys are ignored)", c.name, probs)
		}
	}
}

// BenchmarkParseIncidentMillionKeys reports ParseIncident of a 16 MiB body with a million
// keys, in ms per body: issue 15 asks for at most 2 s on the reference machine.
func BenchmarkParseIncidentMillionKeys(b *testing.B) {
	for _, c := range millionKeyBodies() {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				ParseIncident(c.body, ParseOptions{Now: goldenNow})
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/body")
		})
	}
}

func TestParseIncidentRefusesDuplicateKeys(t *testing.T) {
	for _, body := range []string{
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","source":"other"}`,
		`{"source":"datix","local_id":"A1","event_type":"risk","description":"x","ſource":"other"}`,
	} {
		_, probs := ParseIncident([]byte(body), ParseOptions{})
		if len(probs) != 1 || !strings.Contains(probs[0].Message, "more than once") {
			t.Errorf("%s: got problems %v, want one duplicate-key problem", body, probs)
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":[{"b":"\""}]}`, `[`, `{"\u0000":1}`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`,
		`{"description":1,"deſcription":2}`, `{"risk":1,"ris\u212a":2}`, "{\"a\xff\":1,\"a\xfe\":2}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = duplicateKey(data) // must not panic or loop
	})
}

// FuzzDuplicateKeyFolding checks the folding against encoding/json's own rule for any two
// keys: the same after unescaping and bytes.EqualFold.
func FuzzDuplicateKeyFolding(f *testing.F) {
	for _, p := range [][2]string{{"description", "deſcription"}, {"k", "\u212a"}, {"a", "b"}, {"ß", "ẞ"}, {"a\xff", "A\xfe"}, {"", ""}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		body := `{` + string(ja) + `:1,` + string(jb) + `:2}`
		var ua, ub string
		_ = json.Unmarshal(ja, &ua)
		_ = json.Unmarshal(jb, &ub)
		want := bytes.EqualFold([]byte(ua), []byte(ub))
		if _, got := duplicateKey([]byte(body)); got != want {
			t.Fatalf("%s: duplicate %v, want %v", body, got, want)
		}
	})
}
