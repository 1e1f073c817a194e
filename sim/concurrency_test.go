package sim

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

func TestConcurrentCreates(t *testing.T) {
	h := newHarness(t, nil)
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res := payload(t, "5")
			res["description"] = fmt.Sprintf("event %d", i)
			r, err := h.send(http.MethodPost, collectionPath, marshal(t, res), nil)
			if err != nil || r.status != http.StatusCreated {
				t.Errorf("POST %d: %v %d", i, err, r.status)
				return
			}
			ids[i], _ = r.json(t)["id"].(string)
		})
	}
	// Readers race the writers too.
	for range 4 {
		wg.Go(func() { _ = h.sim.Events(); _ = h.sim.Stats() })
	}
	wg.Wait()

	evs := h.sim.Events()
	if len(evs) != n {
		t.Fatalf("events: got %d, want %d", len(evs), n)
	}
	seenID, seenRef := map[string]bool{}, map[string]bool{}
	for _, e := range evs {
		if seenID[e.ID] || seenRef[e.Reference] {
			t.Errorf("duplicate id or reference: %+v", e)
		}
		seenID[e.ID], seenRef[e.Reference] = true, true
	}
	for i, id := range ids {
		if !seenID[id] {
			t.Errorf("POST %d answered id %q, which is not stored", i, id)
		}
	}
	if st := h.sim.Stats(); st.Creates != n {
		t.Errorf("creates: got %d, want %d", st.Creates, n)
	}
}
