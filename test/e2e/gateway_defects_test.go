package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
)

// TestOldRevisionAfterDuplicateWindow: after JetStream's duplicate window has passed, the
// ledger still answers duplicate: true, storing nothing, for a revision at or below the newest
// one mapped; a record without a revision is a duplicate only when it repeats the newest
// content. Within the window, a record not yet mapped is caught by JetStream itself.
func TestOldRevisionAfterDuplicateWindow(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Queue.DuplicateWindow = time.Second })
	post := func(in map[string]any, wantDup bool, what string) {
		t.Helper()
		if r := h.post(in); r.Status != 202 || r.Duplicate != wantDup {
			t.Fatalf("%s: got %d duplicate=%v, want 202 duplicate=%v", what, r.Status, r.Duplicate, wantDup)
		}
	}
	rev1, rev2 := incident("OLD-1", 1, describe("OLD-1", 1)), incident("OLD-1", 2, describe("OLD-1", 2))
	post(rev1, false, "revision 1")
	post(rev2, false, "revision 2")
	contentA, contentB := incident("OLD-2", 0, "first text of OLD-2"), incident("OLD-2", 0, "second text of OLD-2")
	post(contentA, false, "no revision, content A")
	waitFor(t, 10*time.Second, "OLD-2 content A delivered", func() (bool, string) {
		rec, _ := h.record("datix", "OLD-2")
		return rec.State == "delivered", string(rec.State)
	})
	post(contentB, false, "no revision, content B")
	waitFor(t, 10*time.Second, "both delivered, newest mapped", func() (bool, string) {
		a, _ := h.record("datix", "OLD-1")
		b, _ := h.record("datix", "OLD-2")
		return a.State == "delivered" && a.Revision == 2 && b.State == "delivered" && b.Revision == 2,
			string(a.State) + " " + string(b.State)
	})
	time.Sleep(1500 * time.Millisecond) // let JetStream's one-second window pass: nothing to await

	post(rev2, true, "revision 2 again, after the window")
	post(rev1, true, "revision 1 again, after the window (stale)")
	post(contentB, true, "content B again, after the window (the newest)")
	post(contentA, false, "content A again, after the window (changed back: an amendment)")

	// A record stored but not yet mapped is not in the ledger: JetStream's window answers.
	rev3 := incident("OLD-1", 3, describe("OLD-1", 3))
	post(rev3, false, "revision 3")
	post(rev3, true, "revision 3 again at once")

	waitFor(t, 10*time.Second, "OLD-1 revision 3 delivered", func() (bool, string) {
		rec, _ := h.record("datix", "OLD-1")
		return rec.State == "delivered" && rec.Revision == 3, string(rec.State)
	})
	rec, _ := h.record("datix", "OLD-1")
	if strings.Contains(historyText(rec.History), "ignored") {
		t.Errorf("OLD-1 history: got %s, want no stale revision stored and ignored", historyText(rec.History))
	}
	if st := h.sim.Stats(); st.Creates != 2 {
		t.Errorf("simulator creates: got %d, want 2", st.Creates)
	}
}
