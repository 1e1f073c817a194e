package sim

import (
	"fmt"
	"testing"

	"github.com/psgw/psgw/fhir/privacy"
)

// TestReferencesNeverLookLikeNHSNumbers: a reference is sent back in an amendment, so the
// simulator's own NHS-number check must never fire on one. With an all-digit tag the old
// form SIM-1234-000001 did for about one reference in eleven (TestStoredThenFaults failed
// in CI with 422 on its PUT).
func TestReferencesNeverLookLikeNHSNumbers(t *testing.T) {
	for _, tag := range []string{"0000", "1234", "4010", "9999", "a1b2"} {
		var st store
		st.init()
		for i := 0; i < 20000; i++ {
			if ref := st.nextReference(tag); privacy.ContainsNHSNumber(ref) {
				t.Fatalf("reference %s looks like an NHS number", ref)
			}
		}
	}
	// The old form, to show the check above could fail.
	found := 0
	for i := 1; i <= 2000; i++ {
		if privacy.ContainsNHSNumber(fmt.Sprintf("SIM-%s-%06d", "1234", i)) {
			found++
		}
	}
	if found == 0 {
		t.Fatal("the old form never matched: the test would not catch the defect")
	}
}
