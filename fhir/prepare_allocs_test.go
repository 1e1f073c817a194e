package fhir

import "testing"

// TestPrepareAllocations keeps the mapper's per-incident allocations in check: parse, map,
// redact and validate of the load tool's incident (BenchmarkPrepareTypical) allocated 399 (v5)
// and 424 (v6) times before the work in docs/performance.md, 308 and 329 after. The bounds
// leave room for small changes, not for a return to the old costs.
func TestPrepareAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	data := []byte(typicalIncident)
	for _, tc := range []struct {
		version int
		max     float64
	}{{5, 340}, {6, 360}} {
		b := &Builder{Version: tc.version, Codes: NewCodeMaps(tc.version, goldenCodeMaps)}
		got := testing.AllocsPerRun(50, func() {
			in, ps := ParseIncident(data, ParseOptions{Now: goldenNow})
			if len(ps) > 0 {
				t.Fatal(ps)
			}
			if prep := b.Prepare(in); prep.Payload == nil {
				t.Fatal(prep.Problems)
			}
		})
		if got > tc.max {
			t.Errorf("v%d: got %.0f allocations per incident, want at most %.0f", tc.version, got, tc.max)
		}
	}
}
