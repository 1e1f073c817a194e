package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// TestAmbiguousPostRetryPolicy: with national.on_ambiguous_post: retry, a POST whose answer
// cannot prove that nothing was stored (here the service stores the event and answers 504) is
// sent again, not held as unknown, and the incident, once delivered, is flagged
// possible_duplicate so that an operator can look for the second national record
// (docs/delivery.md, "Classification"; the default policy, hold, is
// TestStoredThenAmbiguousNeverDuplicates).
func TestAmbiguousPostRetryPolicy(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.National.OnAmbiguousPost = "retry" })
	h.sim.SetFaults(sim.Faults{StoreThenErrorRate: 1})
	if r := h.post(incident("AMB-RETRY", 1, describe("AMB-RETRY", 1))); r.Status != 202 {
		t.Fatalf("got %d, want 202", r.Status)
	}
	// The first answer is the stored-then-504; once the service has stored it once, it
	// answers properly again.
	wait.For(t, 10*time.Second, "the first POST stored and answered 504", func() (bool, string) {
		st := h.sim.Stats()
		return st.Creates >= 1, fmt.Sprintf("%d creates", st.Creates)
	})
	h.sim.SetFaults(sim.Faults{})
	wait.For(t, 30*time.Second, "AMB-RETRY delivered", func() (bool, string) {
		rec, _ := h.record("datix", "AMB-RETRY")
		return rec.State == "delivered", fmt.Sprintf("%s %s", rec.State, rec.LastError)
	})
	rec, _ := h.record("datix", "AMB-RETRY")
	if !rec.PossibleDuplicate {
		t.Errorf("delivered after an ambiguous POST under the retry policy, but possible_duplicate is false")
	}
	if hist := historyText(rec.History); !strings.Contains(hist, "HTTP 504") {
		t.Errorf("history does not name the ambiguous answer: %s", hist)
	}
	// Re-sent: the service holds it more than once, which is the price the policy names.
	if n := h.sim.Stats().Creates; n < 2 {
		t.Errorf("the national service created it %d times, want at least 2 (the POST was sent again)", n)
	}
}
