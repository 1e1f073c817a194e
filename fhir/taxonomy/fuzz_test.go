package taxonomy

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/psgw/psgw/fhir/privacy"
)

// FuzzValidate feeds arbitrary JSON to Validate. Its seeds are the worked
// examples and the hostile inputs in testdata/fuzz/FuzzValidate. Properties: it never
// panics, never modifies its input, answers the same twice, returns
// problems sorted with a rule and message each, and never reveals an NHS
// number in a path or message.
func FuzzValidate(f *testing.F) {
	for _, name := range []string{"testdata/worked-example-v5.json", "testdata/worked-example-v6.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r map[string]any
		if json.Unmarshal(data, &r) != nil {
			return
		}
		before, err := json.Marshal(r)
		if err != nil {
			t.Skip("input does not round-trip")
		}
		for _, v := range []int{5, 6} {
			got := Validate(v, r)
			if again := Validate(v, r); !reflect.DeepEqual(got, again) {
				t.Fatalf("v%d: got %v then %v, want the same answer twice", v, got, again)
			}
			for i, p := range got {
				if p.Rule == "" || p.Message == "" {
					t.Fatalf("v%d: got problem %+v, want a rule and a message", v, p)
				}
				if privacy.ContainsNHSNumber(p.Path) || privacy.ContainsNHSNumber(p.Message) {
					t.Fatalf("v%d: problem %q reveals an NHS number", v, p)
				}
				if i > 0 && comparePaths(got[i-1].Path, p.Path) > 0 {
					t.Fatalf("v%d: got %q before %q, want sorted paths", v, got[i-1].Path, p.Path)
				}
			}
		}
		if after, _ := json.Marshal(r); string(after) != string(before) {
			t.Fatal("Validate modified its input")
		}
	})
}
