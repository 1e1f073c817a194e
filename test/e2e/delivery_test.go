package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// TestOutageDrainsInOrder: while the national service is down, incidents and their amendments
// pile up durably and delivery waits for it without spending their attempts; once it is back
// they all drain with nothing lost, each incident ending on its newest revision.
func TestOutageDrainsInOrder(t *testing.T) {
	h := newHarness(t, nil)
	h.sim.SetFaults(sim.Faults{Down: true})
	const n = 40
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("OUT-%02d", i)
		for rev := 1; rev <= 3; rev++ {
			if r := h.post(incident(id, rev, describe(id, rev))); r.Status != 202 {
				t.Fatalf("%s r%d: got %d", id, rev, r.Status)
			}
		}
	}
	wait.For(t, 20*time.Second, "the outage noticed and delivery waiting", func() (bool, string) {
		st := h.get("/api/v1/status")
		return strings.Contains(st, `"outage":true`) && strings.Contains(st, `"status":"down"`), st
	})
	// It is the service's outage, not the gateway's: readiness holds, metrics say so.
	if resp, err := http.Get(h.Base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz during a national outage: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if m := h.get("/metrics"); !strings.Contains(m, "\npsgw_forwarder_outage 1\n") || !strings.Contains(m, "\npsgw_forwarder_paused 0\n") {
		t.Errorf("metrics during the outage: want psgw_forwarder_outage 1 and psgw_forwarder_paused 0")
	}
	// While it waits, the service is probed but no incident spends attempts on it.
	attempts := func() (sum int) {
		for i := 0; i < n; i++ {
			rec, _ := h.record("datix", fmt.Sprintf("OUT-%02d", i))
			sum += rec.Attempts
		}
		return sum
	}
	probed := func(more int) {
		t.Helper()
		down := h.sim.Stats().Faults[sim.FaultDown]
		wait.For(t, 10*time.Second, "the outage probed again", func() (bool, string) {
			got := h.sim.Stats().Faults[sim.FaultDown]
			return got >= down+more, fmt.Sprintf("%d requests refused by the outage, %d at the start", got, down)
		})
	}
	// Sends already on the wire when the pause began still record their attempt; one probe
	// later they have.
	probed(1)
	before := attempts()
	probed(3)
	if after := attempts(); after != before {
		t.Errorf("attempts grew from %d to %d while delivery waited for the outage", before, after)
	}
	if before >= 2*n {
		t.Errorf("%d attempts spent on %d incidents before the outage was noticed", before, n)
	}
	// A restart during the outage loses nothing either.
	h.Restart()
	h.sim.SetFaults(sim.Faults{})
	wait.For(t, 60*time.Second, "the backlog drained", func() (bool, string) {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("OUT-%02d", i)
			rec, _ := h.record("datix", id)
			if rec.State != "delivered" || rec.Revision != 3 {
				return false, fmt.Sprintf("%s: %s r%d %s", id, rec.State, rec.Revision, historyText(rec.History))
			}
		}
		return true, ""
	})
	st := h.sim.Stats()
	if st.Creates != n {
		t.Errorf("got %d creates, want %d", st.Creates, n)
	}
	for _, ev := range h.sim.Events() {
		if !strings.Contains(string(ev.Resource), "revision 3:") {
			t.Errorf("event %s does not hold the newest revision", ev.ID)
		}
	}
}

// TestAuthFailurePausesDelivery: a refused key pauses all delivery without burning attempts;
// the pause shows on the status page, the status API and metrics, but not in /readyz: the
// gateway can still accept and store, so sources must keep pushing (docs/api.md, "Readiness").
// Once the key works again delivery resumes by itself.
func TestAuthFailurePausesDelivery(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.National.AuthProbeInterval = 100 * time.Millisecond })
	h.sim.SetKeys("some-other-key")
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("AUTH-%d", i)
		if r := h.post(incident(id, 1, describe(id, 1))); r.Status != 202 {
			t.Fatalf("got %d", r.Status)
		}
	}
	wait.For(t, 10*time.Second, "delivery paused on the status API", func() (bool, string) {
		st := h.get("/api/v1/status")
		return strings.Contains(st, `"paused":true`) && strings.Contains(st, "paused: auth failure"), st
	})
	// Still ready: ingest can store, and a load balancer must keep sending.
	if resp, err := http.Get(h.Base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz while delivery is paused: %v %v, want 200", resp, err)
	}
	if r := h.post(incident("AUTH-LATE", 1, describe("AUTH-LATE", 1))); r.Status != 202 {
		t.Errorf("POST while delivery is paused: got %d, want 202", r.Status)
	}
	// Metrics say so, for alerting.
	if m := h.get("/metrics"); !strings.Contains(m, "\npsgw_forwarder_paused 1\n") || !strings.Contains(m, "\npsgw_ready 1\n") {
		t.Errorf("metrics while paused: want psgw_forwarder_paused 1 and psgw_ready 1")
	}
	// The page never says nothing is stuck while nothing can be delivered.
	if page := h.get("/"); strings.Contains(page, "Nothing is stuck") || !strings.Contains(page, "Delivery is paused") {
		t.Errorf("overview while paused: want the headline \"Delivery is paused\", not \"Nothing is stuck\"")
	}
	// Let the probe fail a few times: attempts must not grow while paused.
	unauthorized := h.sim.Stats().Unauthorized
	wait.For(t, 10*time.Second, "several failed probes", func() (bool, string) {
		return h.sim.Stats().Unauthorized >= unauthorized+3, fmt.Sprint(h.sim.Stats().Unauthorized)
	})
	for i := 0; i < 5; i++ {
		rec, _ := h.record("datix", fmt.Sprintf("AUTH-%d", i))
		if rec.Attempts > 0 || (rec.State != "held" && rec.State != "queued") {
			t.Errorf("AUTH-%d: state %s with %d attempts while paused, want held/queued with 0", i, rec.State, rec.Attempts)
		}
	}
	h.sim.SetKeys(simKey)
	wait.For(t, 15*time.Second, "delivery resumed", func() (bool, string) {
		for i := 0; i < 5; i++ {
			rec, _ := h.record("datix", fmt.Sprintf("AUTH-%d", i))
			if rec.State != "delivered" {
				return false, string(rec.State)
			}
		}
		return true, ""
	})
	if resp, err := http.Get(h.Base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readiness after resume: %v %v", err, resp.StatusCode)
	}
	if page := h.get("/"); !strings.Contains(page, "Nothing is stuck") {
		t.Errorf("overview after resume: want \"Nothing is stuck\"")
	}
	if m := h.get("/metrics"); !strings.Contains(m, "\npsgw_forwarder_paused 0\n") {
		t.Errorf("metrics after resume: want psgw_forwarder_paused 0")
	}
	if st := h.sim.Stats(); st.Creates != 6 {
		t.Errorf("got %d creates, want 6 (five before the pause was seen, one during)", st.Creates)
	}
}

// TestRejectedThenReplayed: a payload the national service refuses is rejected with its
// reason, and a replay after the cause is fixed delivers it.
func TestRejectedThenReplayed(t *testing.T) {
	h := newHarness(t, nil)
	h.rejectWrites.Store(true)
	if r := h.post(incident("REJ-1", 1, describe("REJ-1", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "rejection", func() (bool, string) {
		rec, _ := h.record("datix", "REJ-1")
		return rec.State == "rejected", string(rec.State)
	})
	rec, _ := h.record("datix", "REJ-1")
	if !strings.Contains(rec.LastError, "HTTP 422") || !strings.Contains(rec.LastError, "refused by the test") {
		t.Errorf("last_error %q does not carry the national service's answer", rec.LastError)
	}
	// Replaying unchanged is refused again; the record says so.
	rec = h.action(t, "REJ-1", "replay", nil, 200)
	wait.For(t, 10*time.Second, "rejected again", func() (bool, string) {
		rec, _ := h.record("datix", "REJ-1")
		return rec.State == "rejected" && strings.Count(historyText(rec.History), "rejected") >= 2, historyText(rec.History)
	})
	if !strings.Contains(historyText(rec.History), `"actor":"anonymous`) {
		t.Errorf("replay not recorded with its actor: %s", historyText(rec.History))
	}
	// The simulator stops refusing (the cause is fixed); a replay now delivers it.
	h.rejectWrites.Store(false)
	h.action(t, "REJ-1", "replay", nil, 200)
	wait.For(t, 10*time.Second, "delivered after replay", func() (bool, string) {
		rec, _ := h.record("datix", "REJ-1")
		return rec.State == "delivered", string(rec.State)
	})
	h.action(t, "REJ-1", "review", nil, 409) // delivered incidents are not "reviewed"
}

// TestLostResponseIsUnknownThenResolved: a POST stored by the national service whose answer
// was lost goes to unknown, is never re-POSTed by itself, and an operator resolves it with the
// national id; the next amendment is a PUT to that id.
func TestLostResponseIsUnknownThenResolved(t *testing.T) {
	h := newHarness(t, nil)
	h.sim.SetFaults(sim.Faults{LostResponseRate: 1})
	if r := h.post(incident("LOST-1", 1, describe("LOST-1", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "unknown", func() (bool, string) {
		rec, _ := h.record("datix", "LOST-1")
		return rec.State == "unknown", string(rec.State)
	})
	h.sim.SetFaults(sim.Faults{})
	// An amendment while unknown must wait rather than POST again.
	if r := h.post(incident("LOST-1", 2, describe("LOST-1", 2))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "amendment noted as waiting", func() (bool, string) {
		rec, _ := h.record("datix", "LOST-1")
		return rec.State == "unknown" && strings.Contains(historyText(rec.History), "waits"), historyText(rec.History)
	})
	evs := h.sim.Events()
	if len(evs) != 1 {
		t.Fatalf("simulator holds %d events, want the 1 whose answer was lost", len(evs))
	}
	h.action(t, "LOST-1", "resolve", map[string]string{"action": "delivered", "national_id": evs[0].ID, "national_reference": evs[0].Reference}, 200)
	wait.For(t, 10*time.Second, "amendment PUT after resolve", func() (bool, string) {
		rec, _ := h.record("datix", "LOST-1")
		return rec.State == "delivered" && rec.Revision == 2 && strings.Contains(historyText(rec.History), "PUT amended"), historyText(rec.History)
	})
	st := h.sim.Stats()
	if st.Creates != 1 || st.Updates != 1 {
		t.Errorf("got %d creates and %d updates, want 1 and 1", st.Creates, st.Updates)
	}
	rec, _ := h.record("datix", "LOST-1")
	if rec.NationalID != evs[0].ID {
		t.Errorf("national id %q, want %q", rec.NationalID, evs[0].ID)
	}
}

// TestRateLimitHonoursRetryAfter: 429s with Retry-After delay the retry at least that long,
// and the incident is delivered once the storm passes.
func TestRateLimitHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, nil)
	// The storm is long enough that the first send lands in it however slowly ingest and
	// mapping go under -race on a loaded machine.
	const storm, retryAfter = 3 * time.Second, time.Second
	h.sim.SetFaults(sim.Faults{StormFor: storm, RetryAfter: retryAfter})
	start := time.Now()
	if r := h.post(incident("RL-1", 1, describe("RL-1", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 15*time.Second, "delivered after the storm", func() (bool, string) {
		rec, _ := h.record("datix", "RL-1")
		return rec.State == "delivered", string(rec.State)
	})
	rec, _ := h.record("datix", "RL-1")
	if n := h.sim.Stats().Faults[sim.FaultStorm]; n < 1 {
		t.Errorf("%d requests refused with 429, want at least one", n)
	}
	if rec.Attempts != 1 {
		t.Errorf("got %d attempts, want 1: a 429 spends none (docs/delivery.md, \"Retry-After\")", rec.Attempts)
	}
	if time.Since(start) < retryAfter {
		t.Errorf("delivered %s after posting, sooner than Retry-After allows", time.Since(start))
	}
	// Each retry waited at least Retry-After, so at most storm/retryAfter+1 tries fit in it.
	if got, most := h.sim.Stats().Faults[sim.FaultStorm], int(storm/retryAfter)+1; got > most {
		t.Errorf("%d requests during the storm, want at most %d; Retry-After was not honoured", got, most)
	}
}

func (h *harness) action(t *testing.T, localID, action string, body any, want int) ops.Record {
	t.Helper()
	code, data := h.postJSON(t, "/api/v1/incidents/datix/"+localID+"/"+action, body)
	if code != want {
		t.Fatalf("%s %s: got %d (%s), want %d", action, localID, code, data, want)
	}
	var rec ops.Record
	_ = json.Unmarshal(data, &rec)
	return rec
}

// get fetches path from the gateway and returns the body ("" on error).
func (h *harness) get(path string) string {
	resp, err := http.Get(h.Base + path)
	if err != nil {
		h.t.Errorf("GET %s: %v", path, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestStoredThenAmbiguousNeverDuplicates: a national service that stores the event and then
// answers 500, 502 or 504, resets, or cuts the body short must not get the POST again (issue
// 13: 504 was retried and created the event twice). Each incident ends unknown, held once.
func TestStoredThenAmbiguousNeverDuplicates(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		id     string
		faults sim.Faults
		detail string
	}{
		{"AMB-504", sim.Faults{StoreThenErrorRate: 1}, "HTTP 504"},
		{"AMB-500", sim.Faults{StoreThenErrorRate: 1, StoreThenStatus: 500}, "HTTP 500"},
		{"AMB-502", sim.Faults{StoreThenErrorRate: 1, StoreThenStatus: 502}, "HTTP 502"},
		{"AMB-599", sim.Faults{StoreThenErrorRate: 1, StoreThenStatus: 599}, "HTTP 599"},
		{"AMB-RST", sim.Faults{StoreThenResetRate: 1}, "no answer"},
		{"AMB-CUT", sim.Faults{TruncateRate: 1}, "body"},
	}
	for _, tc := range cases {
		h.sim.SetFaults(tc.faults)
		before := h.sim.Stats().Creates
		if r := h.post(incident(tc.id, 1, describe(tc.id, 1))); r.Status != 202 {
			t.Fatalf("%s: got %d", tc.id, r.Status)
		}
		wait.For(t, 10*time.Second, tc.id+" unknown", func() (bool, string) {
			rec, _ := h.record("datix", tc.id)
			return rec.State == "unknown", fmt.Sprintf("%s %s; %d creates", rec.State, rec.LastError, h.sim.Stats().Creates-before)
		})
		rec, _ := h.record("datix", tc.id)
		if !strings.Contains(rec.LastError, tc.detail) {
			t.Errorf("%s: last_error %q, want it to name %q", tc.id, rec.LastError, tc.detail)
		}
		if n := h.sim.Stats().Creates - before; n != 1 {
			t.Errorf("%s: created %d times at the national service, want 1", tc.id, n)
		}
	}
}

// TestAmbiguousFloodPauses: a national service that stores every event and then answers 504
// leaves a handful of incidents unknown and pauses delivery (an outage on the status API);
// the rest wait, queued, spending nothing, and go once the service answers properly again.
// While paused, each outage probe (a metadata GET, which such a service answers) lets one
// send go alone, which may turn one more incident unknown (forwarder.resume): so the count
// is bounded by what was in flight when delivery paused plus the probes made, not by how
// long the test happens to take on a loaded machine.
func TestAmbiguousFloodPauses(t *testing.T) {
	h := newHarness(t, nil)
	// probes counts the national API's requests other than POSTs: the outage probes.
	probes := func() int { st := h.sim.Stats(); return st.Requests - st.Creates }
	probesBefore := probes()
	h.sim.SetFaults(sim.Faults{StoreThenErrorRate: 1})
	const n = 40
	for i := range n {
		id := fmt.Sprintf("FLOOD-%02d", i)
		if r := h.post(incident(id, 1, describe(id, 1))); r.Status != 202 {
			t.Fatalf("%s: got %d", id, r.Status)
		}
	}
	wait.For(t, 10*time.Second, "an outage", func() (bool, string) {
		var st struct {
			Forwarder struct {
				Outage       bool   `json:"outage"`
				OutageReason string `json:"outage_reason"`
			} `json:"forwarder"`
		}
		resp, err := http.Get(h.Base + "/api/v1/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st.Forwarder.Outage && strings.Contains(st.Forwarder.OutageReason, "may hide a stored event"), st.Forwarder.OutageReason
	})
	// Let a few probes go by: each costs at most one more send.
	wait.For(t, 15*time.Second, "three outage probes", func() (bool, string) {
		return probes()-probesBefore >= 3, fmt.Sprintf("%d probes", probes()-probesBefore)
	})
	// Every create is an incident that ends unknown (the service answers each POST 504), and
	// a probe comes before the send it lets go: so one reading of the simulator's counters
	// bounds the flood, however slowly the test runs.
	st := h.sim.Stats()
	creates, probed := st.Creates, st.Requests-st.Creates-probesBefore
	concurrency := h.Cfg.National.Concurrency
	t.Logf("%d of %d incidents sent and stored (each ends unknown), %d outage probes, while the service stored and answered 504", creates, n, probed)
	// Before the pause: the run that trips it (max(5, concurrency) answers) and the sends
	// already in flight beside it; after it, one send per probe at most.
	if creates > 2*concurrency+probed {
		t.Errorf("%d of %d incidents sent with %d probes: more than %d in flight at the pause plus one per probe; the pause did not stop the flood", creates, n, probed, 2*concurrency)
	}
	h.sim.SetFaults(sim.Faults{})
	wait.For(t, 30*time.Second, "the rest delivered", func() (bool, string) {
		settled := 0
		for i := range n {
			if rec, _ := h.record("datix", fmt.Sprintf("FLOOD-%02d", i)); rec.State == "delivered" || rec.State == "unknown" {
				settled++
			}
		}
		return settled == n, fmt.Sprintf("%d settled", settled)
	})
	unknown := 0
	for i := range n {
		if rec, _ := h.record("datix", fmt.Sprintf("FLOOD-%02d", i)); rec.State == "unknown" {
			unknown++
		}
	}
	if unknown < creates-1 || unknown > h.sim.Stats().Creates {
		t.Errorf("%d incidents unknown; want each one sent while the service answered 504 (%d, or one fewer if a send was under way as it recovered)", unknown, creates)
	}
	if unknown >= n {
		t.Errorf("every incident unknown: nothing was held back by the pause")
	}
	if c := h.sim.Stats().Creates; c != n {
		t.Errorf("%d creates at the national service, want %d (one per incident)", c, n)
	}
}
