// Package e2e runs the whole gateway in-process against the national-service simulator: an
// embedded JetStream on a temp dir, the real HTTP API and a real HTTP simulator.
package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/test/wait"
)

// TestSpineExactlyOnce is the spine's promise: incidents posted, some re-sent and some
// amended, with a restart midway, are each created exactly once at the national service, with
// amendments as PUTs to the id already held.
func TestSpineExactlyOnce(t *testing.T) {
	spineScenario(t, newHarness(t, nil))
}

// spineScenario is shared by the embedded-JetStream test and the external-cluster test.
func spineScenario(t *testing.T, h *harness) {
	const total = 200
	amended := map[string]bool{}
	late := false
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("INC-%04d", i)
		withRevision := i%2 == 0
		rev := 0
		if withRevision {
			rev = 1
		}
		r := h.post(incident(id, rev, describe(id, 1)))
		if r.Status != 202 || r.Duplicate {
			t.Fatalf("POST %s: got %d duplicate=%v (%s), want 202 duplicate=false", id, r.Status, r.Duplicate, r.Error)
		}
		if i%5 == 0 { // re-send: same revision, or the same content without one
			r := h.post(incident(id, rev, describe(id, 1)))
			if r.Status != 202 || !r.Duplicate {
				t.Fatalf("re-send %s: got %d duplicate=%v, want 202 duplicate=true", id, r.Status, r.Duplicate)
			}
		}
		if i%7 == 0 { // amendment: a higher revision, or new content without one
			amendRev := 0
			if withRevision {
				amendRev = 2
			}
			r := h.post(incident(id, amendRev, describe(id, 2)))
			if r.Status != 202 || r.Duplicate {
				t.Fatalf("amend %s: got %d duplicate=%v, want 202 duplicate=false", id, r.Status, r.Duplicate)
			}
			amended[id] = true
		}
		if i == total/2 {
			h.Restart()
		}
	}
	// A stale revision after the amendment must change nothing.
	if r := h.post(incident("INC-0000", 1, describe("INC-0000", 1)+" stale copy")); r.Status != 202 {
		t.Fatalf("stale revision: got %d, want 202", r.Status)
	}

	// final is the revision each incident ends on: every 10th is amended again after delivery.
	final := func(id string) int {
		var i int
		fmt.Sscanf(id, "INC-%d", &i)
		switch {
		case i%10 == 0 && late:
			return 3
		case amended[id]:
			return 2
		}
		return 1
	}
	waitAllDelivered := func() {
		wait.For(t, 60*time.Second, "every incident delivered in its final revision", func() (bool, string) {
			for i := 0; i < total; i++ {
				id := fmt.Sprintf("INC-%04d", i)
				rec, code := h.record("datix", id)
				if code != 200 || rec.State != "delivered" || rec.Revision != final(id) || rec.NationalID == "" {
					return false, fmt.Sprintf("%s: HTTP %d state=%s revision=%d (want %d) last_error=%q", id, code, rec.State, rec.Revision, final(id), rec.LastError)
				}
			}
			return true, ""
		})
	}
	waitAllDelivered()

	// Amendments of incidents the national service already holds must be PUTs to their id.
	nationalID := map[string]string{}
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("INC-%04d", i)
		rec, _ := h.record("datix", id)
		nationalID[id] = rec.NationalID
	}
	lateAmended := 0
	for i := 0; i < total; i += 10 {
		id := fmt.Sprintf("INC-%04d", i)
		rev := 0
		if i%2 == 0 {
			rev = 3
		}
		if r := h.post(incident(id, rev, describe(id, 3))); r.Status != 202 || r.Duplicate {
			t.Fatalf("late amend %s: got %d duplicate=%v, want 202 duplicate=false", id, r.Status, r.Duplicate)
		}
		lateAmended++
	}
	late = true
	waitAllDelivered()

	// Count at the simulator: one create per incident; amendments update that event.
	creates := map[string]int{}
	finalText := map[string]string{}
	idOf := regexp.MustCompile(`Incident (INC-\d{4}) revision (\d)`)
	for _, ev := range h.sim.Events() {
		var res struct {
			Description string `json:"description"`
		}
		if err := json.Unmarshal(ev.Resource, &res); err != nil {
			t.Fatal(err)
		}
		m := idOf.FindStringSubmatch(res.Description)
		if m == nil {
			t.Fatalf("simulator holds an event with unexpected description %q", res.Description)
		}
		creates[m[1]]++
		finalText[m[1]] = res.Description
		if strings.Contains(string(ev.Resource), "9434765919") || strings.Contains(string(ev.Resource), "1975-03-01") {
			t.Errorf("%s: a patient identifier reached the national service", m[1])
		}
	}
	puts := 0
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("INC-%04d", i)
		if creates[id] != 1 {
			t.Errorf("%s: created %d times at the national service, want exactly 1", id, creates[id])
		}
		want := describe(id, 1)
		switch {
		case i%10 == 0:
			want = describe(id, 3)
		case amended[id]:
			want = describe(id, 2)
		}
		if finalText[id] != want {
			t.Errorf("%s: national service holds %q, want %q", id, finalText[id], want)
		}
		rec, _ := h.record("datix", id)
		if rec.NationalID != nationalID[id] {
			t.Errorf("%s: national id changed from %s to %s", id, nationalID[id], rec.NationalID)
		}
		hist := historyText(rec.History)
		puts += strings.Count(hist, "PUT amended")
		if i%10 == 0 && !strings.Contains(hist, "PUT amended") {
			t.Errorf("%s: amendment of a delivered incident was not a PUT; history: %s", id, hist)
		}
	}
	st := h.sim.Stats()
	if st.Creates != total {
		t.Errorf("simulator counted %d creates, want %d", st.Creates, total)
	}
	if st.Updates != puts || puts < lateAmended {
		t.Errorf("simulator counted %d updates; ledgers record %d PUTs; want equal and at least %d", st.Updates, puts, lateAmended)
	}
}

func historyText[T any](h []T) string {
	b, _ := json.Marshal(h)
	return string(b)
}
