package fhir

import (
	"math"
	"strconv"
	"testing"
)

// TestParseIncidentRevisionBounds: a revision above MaxRevision is refused with a field error.
// 2^63-1 used to be accepted, and a later send without a revision overflowed the ledger's
// count, after which revision 2 was taken as newer (issue 15, item 7).
func TestParseIncidentRevisionBounds(t *testing.T) {
	for _, tc := range []struct {
		revision string
		ok       bool
	}{
		{"1", true}, {"2", true}, {strconv.Itoa(math.MaxInt32 + 1), true}, {strconv.Itoa(1 << 33), true},
		{strconv.Itoa(MaxRevision), true},
		{"0", false}, {"-1", false}, {strconv.Itoa(MaxRevision + 1), false},
		{strconv.FormatInt(math.MaxInt64, 10), false},
	} {
		body := `{` + baseIncident + `,"occurred_at":"2025-03-14","revision":` + tc.revision + `}`
		_, ps := ParseIncident([]byte(body), ParseOptions{Now: goldenNow})
		if tc.ok {
			if len(ps) != 0 {
				t.Errorf("revision %s: got %v, want no problems", tc.revision, ps)
			}
			continue
		}
		want := "revision: must be a whole number of at least 1 and at most " + strconv.Itoa(MaxRevision)
		if len(ps) != 1 || ps[0].String() != want {
			t.Errorf("revision %s: got %v, want %q", tc.revision, ps, want)
		}
	}
}

// TestNextRevision: the revision of an amendment sent without one never wraps, whatever the
// current revision is, so that no later revision can be taken as older.
func TestNextRevision(t *testing.T) {
	for _, tc := range []struct{ cur, want int }{
		{0, 1}, {1, 2}, {41, 42}, {MaxRevision - 1, MaxRevision}, {MaxRevision, MaxRevision},
		{MaxRevision + 5, MaxRevision}, {math.MaxInt, MaxRevision}, {-3, 1}, {math.MinInt, 1},
	} {
		if got := NextRevision(tc.cur); got != tc.want {
			t.Errorf("NextRevision(%d) = %d, want %d", tc.cur, got, tc.want)
		}
	}
	// MaxRevision is where doubles stop holding every integer: it and the next are exact,
	// the one after is not.
	if int(float64(MaxRevision)) != MaxRevision || int(float64(MaxRevision+1)) != MaxRevision+1 || int(float64(MaxRevision+2)) == MaxRevision+2 {
		t.Errorf("MaxRevision %d is not the last integer every double holds", MaxRevision)
	}
}
