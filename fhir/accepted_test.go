package fhir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecodeAccepted: for any body ParseIncident accepts, DecodeAccepted reads the same
// incident and finds no problem; so the mapper may read stored records with it.
func FuzzDecodeAccepted(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/*/input.json")
	for _, p := range inputs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(typicalIncident))
	f.Add([]byte(`{"source":"datix","local_id":"A1","event_type":"incident","occurred_at":"2025-03-14t09:30:00z","description":"x","SOURCE":"datix"}`))
	opt := ParseOptions{Now: goldenNow}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, ps := ParseIncident(data, opt)
		if len(ps) > 0 {
			return
		}
		got, ps := DecodeAccepted(data, opt)
		if len(ps) > 0 {
			t.Fatalf("accepted body has problems: %v", ps)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("incidents differ (-ParseIncident +DecodeAccepted):\n%s", diff)
		}
	})
}

func TestDecodeAccepted(t *testing.T) {
	// Validate still runs with the options of the moment: a source no longer configured, or
	// an incident in the future of the record's received time, is refused.
	body := []byte(typicalIncident)
	if _, ps := DecodeAccepted(body, ParseOptions{Now: goldenNow, Sources: map[string]bool{"other": true}}); len(ps) != 1 || ps[0].Field != "source" {
		t.Errorf("got %v, want one problem on source", ps)
	}
	// Bytes that do not decode get ParseIncident's answer.
	for _, bad := range []string{`{`, `[]`, `{"source":1}`, "{\"description\":\"caf\xe9\"}"} {
		_, want := ParseIncident([]byte(bad), ParseOptions{Now: goldenNow})
		_, got := DecodeAccepted([]byte(bad), ParseOptions{Now: goldenNow})
		if diff := cmp.Diff(want, got); diff != "" && len(got) == 0 {
			t.Errorf("%q: got %v, want problems like ParseIncident's %v", bad, got, want)
		}
	}
}

// BenchmarkDecodeAccepted compares the mapper's read of a stored record with ParseIncident,
// for the load tool's incident and for the largest body the HTTP adapter takes.
func BenchmarkDecodeAccepted(b *testing.B) {
	bodies := []struct {
		name string
		body []byte
	}{{"typical", []byte(typicalIncident)}, {"million-keys", millionKeyBodies()[0].body}}
	for _, c := range bodies {
		for _, fn := range []struct {
			name string
			read func([]byte, ParseOptions) (*Incident, []Problem)
		}{{"ParseIncident", ParseIncident}, {"DecodeAccepted", DecodeAccepted}} {
			b.Run(c.name+"/"+fn.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, ps := fn.read(c.body, ParseOptions{Now: goldenNow}); len(ps) > 0 {
						b.Fatal(ps)
					}
				}
			})
		}
	}
}
