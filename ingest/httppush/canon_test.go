package httppush

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest/adaptertest"
)

// contentHashReference is contentHash as it was before canon.go: encoding/json decodes the
// body into an any and encodes it again. Every hash already stored was made by it, so the new
// contentHash must give the same for every body.
func contentHashReference(body []byte) string {
	var v any
	canon := body
	if err := json.Unmarshal(body, &v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:12])
}

// referenceCanon is the canonical form by encoding/json, ok false when it refuses the body.
func referenceCanon(body []byte) ([]byte, bool) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return nil, false
	}
	b, err := json.Marshal(v)
	return b, err == nil
}

// checkSameAsReference fails t unless canon.go and encoding/json agree on body: the same
// canonical bytes, or both refusing it, and the same content hash.
func checkSameAsReference(t *testing.T, body []byte) {
	t.Helper()
	want, wantOK := referenceCanon(body)
	got, gotOK := appendCanonical(nil, body)
	if gotOK != wantOK || !bytes.Equal(got, want) {
		t.Fatalf("body %q:\n got %v %q\nwant %v %q", trunc(body), gotOK, trunc(got), wantOK, trunc(want))
	}
	if g, w := contentHash(body), contentHashReference(body); g != w {
		t.Fatalf("body %q: contentHash %s, reference %s", trunc(body), g, w)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "…"...)
	}
	return b
}

// canonSeeds are the bodies the fuzzer starts from and the table test checks: each names a
// rule of encoding/json the canonical form must follow.
var canonSeeds = []string{
	// Formatting and key order.
	`{"b":1,"a":2}`, ` { "a" : [ 1 , 2 ] , "c" : { } , "b" : [ ] } `, "\t\r\n{\"a\":null}\n",
	`{"a":{"z":1,"y":{"x":2,"w":3}},"A":true,"":false}`, `{"aa":1,"a":2,"ab":3,"a\u0000":4}`,
	`{"é":1,"e":2,"z":3,"\u00e9x":4}`, `{"\ud83d\ude00":1,"\uffff":2,"\ufffd":3}`,
	// Repeated keys: the last one wins, wherever it is, however it is spelled.
	`{"a":1,"a":2}`, `{"a":1,"b":2,"a":3}`, `{"a":1,"\u0061":2}`, `{"a":{"x":1},"a":[2]}`,
	"{\"\xff\":1,\"\xfe\":2}", `{"\ud800":1,"\udc00":2,"�":3}`, `{"b":1,"a":2,"b":3,"a":4,"b":5}`,
	// Strings: escapes, HTML, line separators, invalid UTF-8, surrogates.
	`"<a href='x'>&amp;</a>"`, `"\u003c\u003e\u0026"`, `"\/\b\f\n\r\t\"\\"`, `"\u0000\u001f\u007f\u0080"`,
	"\"\u2028\u2029\"", `"\u2028\u2029\u2027\u202a"`, "\"\xff\xfe\xed\xa0\x80\xc0\xaf\"", "\"a\xe2\x82\"",
	`"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\uD83D\uDE00x"`,
	`"\ud83dx"`, `"\ud83d\\"`, "\"\x7f\"", `"日本語"`, `"\u65e5\u672c"`, "\"\xef\xbf\xbd\"", `"'"`,
	// Numbers, as float64.
	`[1.0,1e2,1E+2,-0,0,-0.0,0.1,1e21,1e20,1e-6,1e-7,123456789012345678,100000000000000000000]`,
	`[5e-324,4e-324,1.7976931348623157e308,2.2250738585072014e-308,1e-400,-1e-400,0.000001]`,
	`[1e400]`, `[-1e400]`, `1.7976931348623159e308`, `123456789012345`, `1234567890123456`,
	`9007199254740993`, `-9007199254740993`, `[0.1e1,10e-1,1.5e300,-2.5e-10,1E-07,12e20,123e-9]`,
	`1e-0`, `0e0`, `-0e-0`, `0.0000001`, `99999999999999999999999`, `1e+21`, `[999999999999999999999]`,
	// Scalars and empties at the top level.
	`true`, `false`, `null`, `""`, `[]`, `{}`, `[[],{},[{}]]`, `0`, `-1`,
	// Malformed: hashed as sent.
	``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `01`, `-`, `1.`, `.5`, `+1`,
	`1e`, `1e+`, `--1`, `tru`, `truex`, `nul`, `nulll`, `[1 2]`, `{"a":1 "b":2}`, `{"a" 1}`,
	`{1:2}`, `"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, `"\'"`, "\"a\tb\"", "\"a\nb\"", "\"\x00\"",
	`{"a":1}x`, `{"a":1}{}`, `[1] [2]`, "\ufeff{}", `[1,2]]`, `{"a":[1}`, `nan`, `NaN`, `Infinity`,
	"\x00", `[1e99999]`, `{"a":1e400}`, `[-]`, `[1.e5]`, `[1e5.5]`, `[0x10]`, "{\"a\":1}\v",
}

func examples(t testing.TB) [][]byte {
	paths, err := filepath.Glob("../../docs/examples/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("docs/examples/*.json: %v %v", paths, err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestCanonicalMatchesReference holds canon.go to encoding/json on every seed, on the example
// incidents, and on shapes too big to be seeds: deep nesting at and over encoding/json's
// limit, many keys in every order.
func TestCanonicalMatchesReference(t *testing.T) {
	for _, s := range canonSeeds {
		checkSameAsReference(t, []byte(s))
	}
	for _, b := range examples(t) {
		checkSameAsReference(t, b)
		// The same incident indented, or with its keys in another order, is the same.
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		indented, _ := json.MarshalIndent(v, "  ", "\t")
		checkSameAsReference(t, indented)
		if contentHash(indented) != contentHash(b) {
			t.Errorf("an indented example hashes differently")
		}
	}
	depths := []int{1, 2, 100, maxCanonDepth - 1, maxCanonDepth, maxCanonDepth + 1}
	if canonRace {
		// encoding/json at ten thousand levels takes seconds under the race detector.
		depths = []int{1, 2, 100, maxCanonDepth, maxCanonDepth + 1}
	}
	for _, depth := range depths {
		arrays := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		objects := strings.Repeat(`{"b":0,"a":`, depth-1) + `{"b":0,"a":1` + strings.Repeat("}", depth)
		mixed := strings.Repeat(`{"x":[`, depth/2) + `"<&>"` + strings.Repeat("]}", depth/2)
		for i, s := range []string{arrays, objects, mixed} {
			if canonRace && i == 2 && depth > 100 {
				continue
			}
			checkSameAsReference(t, []byte(s))
		}
	}
	var many, reversed, dups bytes.Buffer
	many.WriteString(`{"x":[`)
	reversed.WriteString(`{`)
	dups.WriteString(`{`)
	n := 20000
	if canonRace {
		n = 2000 // the race detector slows encoding/json's reference many times
	}
	for i := range n {
		if i > 0 {
			many.WriteByte(',')
			reversed.WriteByte(',')
			dups.WriteByte(',')
		}
		many.WriteString(`{"` + strconv.FormatInt(int64(i*7919%n), 36) + `":` + strconv.Itoa(i) + `.5}`)
		reversed.WriteString(`"k` + strconv.Itoa(n-i) + `":"v` + strconv.Itoa(i) + `\u00e9"`)
		dups.WriteString(`"k` + strconv.Itoa(i%97) + `":` + strconv.Itoa(i))
	}
	many.WriteString(`]}`)
	reversed.WriteByte('}')
	dups.WriteByte('}')
	for _, b := range [][]byte{many.Bytes(), reversed.Bytes(), dups.Bytes()} {
		checkSameAsReference(t, b)
	}
}

// TestCanonicalForm spells out what encoding/json makes of some bodies, so that a reader
// sees the rules (TestCanonicalMatchesReference proves them against encoding/json).
func TestCanonicalForm(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{` { "b" : 1.0 , "a" : [ 1e2 , -0 , 1e21 , 1e-7 , 0.000001 ] } `, `{"a":[100,-0,1e+21,1e-7,0.000001],"b":1}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"é":1,"z":2,"\u0061":3}`, `{"a":3,"z":2,"é":1}`},
		{`"<\/>&\u2028\ud800\u00e9"`, `"\u003c/\u003e\u0026\u2028` + "\ufffd\u00e9" + `"`},
		{"\"\xff\"", "\"\ufffd\""},
		{`[100000000000000000000,5e-324,1.7976931348623157e308]`, `[100000000000000000000,5e-324,1.7976931348623157e+308]`},
	} {
		got, ok := appendCanonical(nil, []byte(c.in))
		if !ok || string(got) != c.want {
			t.Errorf("%s: got %v %s, want %s", c.in, ok, got, c.want)
		}
	}
	for _, in := range []string{`[1e400]`, `{"a":}`, `[1,]`, strings.Repeat("[", maxCanonDepth+1) + strings.Repeat("]", maxCanonDepth+1)} {
		if _, ok := appendCanonical(nil, []byte(in)); ok {
			t.Errorf("%.40s: canonicalised, want refused (hashed as sent)", in)
		}
		sum := sha256.Sum256([]byte(in))
		if got := contentHash([]byte(in)); got != hex.EncodeToString(sum[:12]) {
			t.Errorf("%.40s: hash %s, want the hash of the body as sent", in, got)
		}
	}
}

// FuzzContentHashMatchesReference: for any body, the canonical form and the content hash are
// encoding/json's (contentHashReference), byte for byte; a body encoding/json refuses is
// hashed as sent.
func FuzzContentHashMatchesReference(f *testing.F) {
	for _, s := range canonSeeds {
		f.Add([]byte(s))
	}
	for _, b := range examples(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSameAsReference(t, body)
	})
}

// TestContentHashManyKeys: a 16 MiB body with a million keys, issue 15's cheapest expensive
// request, hashes as encoding/json hashes it, in time linear in the body. The bound only
// catches a return to super-linear work (a quadratic sort or copy of a million keys takes
// hours); BenchmarkContentHash gives the real figure. Under the race detector a tenth of the
// body keeps it short.
func TestContentHashManyKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB body")
	}
	n, size := 1_000_000, hashMaxBody
	if canonRace {
		n, size = 100_000, hashMaxBody/10
	}
	body := adaptertest.ManyKeysBody(t, n, size)
	start := time.Now()
	got := contentHash(body)
	elapsed := time.Since(start)
	t.Logf("%d keys in %d bytes hashed in %v", n, len(body), elapsed.Round(time.Millisecond))
	if elapsed > 30*time.Second {
		t.Errorf("hashing took %v, want well under 30 s", elapsed)
	}
	if want := contentHashReference(body); got != want {
		t.Errorf("hash %s, encoding/json's %s", got, want)
	}
}

// TestCanonicalRandomObjects: objects larger than the fuzzer makes, with keys that share
// their first eight bytes (where the sort compares whole keys), differ only past them or in
// length, repeat, or are spelled with escapes and invalid UTF-8, are canonicalised as
// encoding/json does. The seed is fixed, so a failure repeats.
func TestCanonicalRandomObjects(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2))
	parts := []string{"abcdefgh", "abcdefg", "a", "", `\u0000`, "\x7f", `\u0061`, "é", `\u00e9`, "\xff", `\ud800`, "<", `\"`, "z", "\u2028", "𝄞"}
	key := func() string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		return b.String()
	}
	var value func(depth int) string
	value = func(depth int) string {
		switch n := rng.IntN(10); {
		case n < 2 && depth < 3:
			var b strings.Builder
			b.WriteByte('{')
			for i := range rng.IntN(50) {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"` + key() + `":` + value(depth+1))
			}
			b.WriteByte('}')
			return b.String()
		case n < 3 && depth < 3:
			return "[" + value(depth+1) + "," + value(depth+1) + "]"
		case n < 6:
			return strconv.Itoa(rng.IntN(1000))
		case n < 8:
			return `"` + key() + `"`
		default:
			return []string{"1.5e300", "-0.0", "1e-7", "null", "true"}[rng.IntN(5)]
		}
	}
	rounds := 40
	if canonRace {
		rounds = 4
	}
	for range rounds {
		var b strings.Builder
		b.WriteByte('{')
		for i := range 1 + rng.IntN(2000) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + key() + `":` + value(1))
		}
		b.WriteByte('}')
		body := []byte(b.String())
		if _, ok := appendCanonical(nil, body); !ok {
			t.Fatalf("the generator made a body encoding/json refuses: %q", trunc(body))
		}
		checkSameAsReference(t, body)
	}
}
