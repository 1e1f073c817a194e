package gateway

import "testing"

// TestStoreRecordLimit: adapters are told the largest record the NATS server takes, with room
// for the record's headers, and lower their own limits to it (ingest.FitRecordLimit; each
// adapter's Factory applies it). A server too small to leave a useful limit gives none.
func TestStoreRecordLimit(t *testing.T) {
	for _, tc := range []struct{ maxPayload, want int64 }{
		{1 << 20, 1<<20 - 64<<10}, // an external server with NATS's default max_payload
		{8<<20 + 64<<10, 8 << 20}, // the embedded server, sized from the limits
		{64<<10 + 1023, 0},        // nothing worth keeping to
		{64<<10 + 1024, 1024},
	} {
		if got := storeRecordLimit(tc.maxPayload); got != tc.want {
			t.Errorf("max_payload %d: got %d, want %d", tc.maxPayload, got, tc.want)
		}
	}
}
