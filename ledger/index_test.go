package ledger

import (
	"testing"
	"time"
)

// TestIndexAbsent: the index says a key is absent only while it follows the ledger, and only
// for a key it holds no row for; asking adds nothing to it.
func TestIndexAbsent(t *testing.T) {
	x := newIndex(nil)
	known := "datix.0123456789abcdef0123456789abcdef"
	now := time.Now().UTC()
	x.view.apply(known, rowOf(slimEntry{Source: "datix", LocalID: "INC-1", State: StateQueued, UpdatedAt: now}), now)
	x.view.apply("datix.odd-key", rowOf(slimEntry{Source: "datix", LocalID: "INC-2", State: StateHeld, UpdatedAt: now}), now)
	for _, tc := range []struct {
		key       string
		following bool
		want      bool
	}{
		{known, false, false}, // not following: does not know
		{"datix.ffffffffffffffffffffffffffffffff", false, false},
		{known, true, false},
		{"datix.odd-key", true, false},
		{"datix.ffffffffffffffffffffffffffffffff", true, true},
		{"other.0123456789abcdef0123456789abcdef", true, true},
		{"datix.0123456789ABCDEF0123456789ABCDEF", true, true}, // another key: keys are exact
		{"datix.other-odd-key", true, true},
	} {
		x.following = tc.following
		if got := x.absent(tc.key); got != tc.want {
			t.Errorf("absent(%q) following=%v: got %v, want %v", tc.key, tc.following, got, tc.want)
		}
	}
	if n := len(x.view.names); n != 2 {
		t.Errorf("names after lookups: got %d, want 2 (datix and the odd key): a lookup added to the table", n)
	}
}
