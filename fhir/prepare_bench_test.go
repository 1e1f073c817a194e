package fhir

import (
	"testing"
)

// typicalIncident is the incident the load tool sends (test/load): one patient, no agents,
// the size most trusts' incidents are. BenchmarkPrepare's worked example is the largest case.
const typicalIncident = `{"description":"Scheduled IV antibiotic dose given about four hours late because the ward was short of staff and the dose was missed at the handover; the patient was monitored and came to no harm. L-1","event_type":"incident","immediate_actions":"Dose given; prescriber informed; family told.","local_id":"L-1","location":{"organisation":"RRK"},"occurred_at":"2025-03-14T09:30:00Z","patients":[{"date_of_birth":"1975-03-01","nhs_number":"9434765919","physical_harm":"none","psychological_harm":"none","sex":"female"}],"reporter":{"organisation":"RRK","role":"Nurse or midwife"},"revision":1,"source":"datix"}`

// BenchmarkPrepareTypical is parse, map, redact and validate of the load tool's incident, as
// the mapper does per record. Run with -cpu 1 for the per-core rate.
func BenchmarkPrepareTypical(b *testing.B) {
	data := []byte(typicalIncident)
	for _, v := range []int{5, 6} {
		bl := &Builder{Version: v, Codes: NewCodeMaps(v, goldenCodeMaps)}
		b.Run("v"+string(rune('0'+v)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				in, ps := ParseIncident(data, ParseOptions{Now: goldenNow})
				if len(ps) > 0 {
					b.Fatal(ps)
				}
				if prep := bl.Prepare(in); prep.Payload == nil {
					b.Fatal(prep.Problems)
				}
			}
		})
	}
}
