package ingest_test

import (
	"fmt"
	"testing"

	"github.com/psgw/psgw/ingest"
)

func TestSourceLabels(t *testing.T) {
	l := ingest.NewSourceLabels(map[string]bool{"datix": true, "ulysses": true}, 2)
	for i, tc := range []struct{ in, want string }{
		{"a", "a"}, {"datix", "datix"}, {"b", "b"}, {"c", "other"}, {"a", "a"}, {"ulysses", "ulysses"},
		{"other", "other"}, {"d", "other"}, {"b", "b"},
	} {
		if got := l.Label(tc.in); got != tc.want {
			t.Errorf("%d: Label(%q): got %q, want %q", i, tc.in, got, tc.want)
		}
	}
	// However many names arrive, the labels stay bounded.
	seen := map[string]bool{}
	for i := range 10000 {
		seen[l.Label(fmt.Sprintf("s%d", i))] = true
	}
	if len(seen) != 1 || !seen["other"] {
		t.Errorf("10,000 new names gave labels %v, want only other", seen)
	}
}
