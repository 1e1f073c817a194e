package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/wait"
)

// postJSON posts body to path on the gateway and returns the status and the raw answer.
func (h *harness) postJSON(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, h.Base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", "e2e") // access control is off: any value (docs/api.md)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// makeUnknown sends localID while every answer is lost, so that its POST ends unknown with
// the event held by the simulator, and returns once the ledger says unknown.
func (h *harness) makeUnknown(t *testing.T, localID string) {
	t.Helper()
	h.sim.SetFaults(sim.Faults{LostResponseRate: 1})
	if r := h.post(incident(localID, 1, describe(localID, 1))); r.Status != 202 {
		t.Fatalf("POST %s: got %d, want 202", localID, r.Status)
	}
	wait.For(t, 10*time.Second, localID+" unknown", func() (bool, string) {
		rec, _ := h.record("datix", localID)
		return rec.State == "unknown", string(rec.State)
	})
	h.sim.SetFaults(sim.Faults{})
}

// TestReplayNeverResendsUnknown: a replay, single or bulk, whatever its filter, never POSTs
// an incident whose earlier POST had an unknown outcome: the single replay is refused with
// 409 pointing to resolve, the bulk replay skips it and says why. Only resolve's resend
// sends it again, flagged as a possible duplicate.
func TestReplayNeverResendsUnknown(t *testing.T) {
	h := newHarness(t, nil)
	h.makeUnknown(t, "UNK-1")
	if n := h.sim.Stats().Creates; n != 1 {
		t.Fatalf("simulator creates: got %d, want the 1 whose answer was lost", n)
	}

	code, body := h.postJSON(t, "/api/v1/incidents/datix/UNK-1/replay", nil)
	var refusal ops.ActionError
	_ = json.Unmarshal(body, &refusal)
	if code != http.StatusConflict || refusal.Code != ops.CodeNeedsResolve || !strings.Contains(refusal.Error, "resolve") ||
		!strings.Contains(refusal.Error, "--resend") || !strings.Contains(refusal.Error, "--national-id") {
		t.Errorf("single replay of an unknown incident: got %d %s, want 409 code needs_resolve pointing to resolve --resend or --delivered --national-id", code, body)
	}

	// The incident page offers resolve, not replay.
	resp, err := http.Get(h.Base + "/incidents/datix/UNK-1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), `id="btn-replay"`) || !strings.Contains(string(page), `id="no-replay"`) {
		t.Errorf("incident page of an unknown incident: want no replay button and the reason why")
	}

	for _, filter := range []map[string]any{{}, {"state": "unknown"}, {"source": "datix"}} {
		code, body := h.postJSON(t, "/api/v1/replay", filter)
		var res ops.BulkReplayResult
		_ = json.Unmarshal(body, &res)
		if code != http.StatusOK || res.Matched != 1 || res.Replayed != 0 || res.Skipped != 1 || len(res.SkippedItems) != 1 {
			t.Errorf("bulk replay %v: got %d %s, want 200 with 1 matched, 0 replayed, 1 skipped", filter, code, body)
			continue
		}
		if sk := res.SkippedItems[0]; sk.LocalID != "UNK-1" || sk.State != "unknown" || sk.Code != ops.CodeNeedsResolve || !strings.Contains(sk.Reason, "resolve") {
			t.Errorf("bulk replay %v: skipped item %+v, want UNK-1, unknown, needs_resolve and a reason naming resolve", filter, sk)
		}
	}

	// Nothing may have been sent: give a wrongly queued replay time to reach the simulator.
	time.Sleep(500 * time.Millisecond)
	if st := h.sim.Stats(); st.Creates != 1 {
		t.Fatalf("simulator creates after the replays: got %d, want 1 (a replay re-POSTed an unknown send)", st.Creates)
	}
	rec, _ := h.record("datix", "UNK-1")
	if rec.State != "unknown" || rec.PossibleDuplicate || strings.Contains(historyText(rec.History), "replayed") {
		t.Fatalf("after the refused replays: got state %s possible_duplicate=%v history %s, want unknown and untouched", rec.State, rec.PossibleDuplicate, historyText(rec.History))
	}

	// The explicit resend is the way to send it again.
	h.action(t, "UNK-1", "resolve", map[string]string{"action": "resend"}, 200)
	wait.For(t, 10*time.Second, "resent and delivered", func() (bool, string) {
		rec, _ := h.record("datix", "UNK-1")
		return rec.State == "delivered" && rec.PossibleDuplicate, string(rec.State)
	})
	if st := h.sim.Stats(); st.Creates != 2 {
		t.Errorf("simulator creates after resend: got %d, want 2", st.Creates)
	}
}

// TestReplayRefusedWhileAwaitingResolution: an incident whose newest revision sits in
// another state (here quarantined) while an earlier POST's outcome is still unknown is not
// replayed either, and resolving it as delivered is allowed.
func TestReplayRefusedWhileAwaitingResolution(t *testing.T) {
	h := newHarness(t, nil)
	h.makeUnknown(t, "UNK-2")
	key := ledger.Key("datix", ingest.IncidentKey("datix", "UNK-2"))
	// As if revision 2 had arrived and failed validation while revision 1's POST is unknown.
	if _, err := h.GW.Ledger.Update(context.Background(), key, func(e *ledger.Entry, _ bool) error {
		e.Note(time.Now().UTC(), ledger.StateQuarantined, "revision 2: a field failed validation", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code, body := h.postJSON(t, "/api/v1/incidents/datix/UNK-2/replay", nil); code != http.StatusConflict || !strings.Contains(string(body), ops.CodeNeedsResolve) {
		t.Errorf("replay of a quarantined incident awaiting resolution: got %d %s, want 409 needs_resolve", code, body)
	}
	code, body := h.postJSON(t, "/api/v1/replay", map[string]any{"state": "quarantined"})
	var res ops.BulkReplayResult
	_ = json.Unmarshal(body, &res)
	if code != http.StatusOK || res.Replayed != 0 || res.Skipped != 1 {
		t.Errorf("bulk replay of quarantined: got %d %s, want it skipped", code, body)
	}
	evs := h.sim.Events()
	if len(evs) != 1 {
		t.Fatalf("simulator holds %d events, want 1", len(evs))
	}
	h.action(t, "UNK-2", "resolve", map[string]string{"action": "delivered", "national_id": evs[0].ID}, 200)
	if st := h.sim.Stats(); st.Creates != 1 {
		t.Errorf("simulator creates: got %d, want 1", st.Creates)
	}
}

// TestResolveDeliveredRefusesAnotherNationalID: an incident that holds a national id (here a
// delivered one whose amendment then failed) answers 409 to a resolve with a different id,
// and keeps its own.
func TestResolveDeliveredRefusesAnotherNationalID(t *testing.T) {
	h := newHarness(t, nil)
	if r := h.post(incident("NID-1", 1, describe("NID-1", 1))); r.Status != 202 {
		t.Fatalf("got %d", r.Status)
	}
	wait.For(t, 10*time.Second, "delivered", func() (bool, string) {
		rec, _ := h.record("datix", "NID-1")
		return rec.State == "delivered", string(rec.State)
	})
	held, _ := h.record("datix", "NID-1")
	key := ledger.Key("datix", ingest.IncidentKey("datix", "NID-1"))
	// As if an amendment's PUT had used up its retries.
	if _, err := h.GW.Ledger.Update(context.Background(), key, func(e *ledger.Entry, _ bool) error {
		e.Note(time.Now().UTC(), ledger.StateFailed, "HTTP 503 on PUT; retries used up", "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	code, body := h.postJSON(t, "/api/v1/incidents/datix/NID-1/resolve", map[string]string{"action": "delivered", "national_id": "some-other-id"})
	if code != http.StatusConflict || !strings.Contains(string(body), "already holds national id "+held.NationalID) {
		t.Errorf("resolve with another national id: got %d %s, want 409 naming the id held", code, body)
	}
	if rec, _ := h.record("datix", "NID-1"); rec.NationalID != held.NationalID {
		t.Errorf("national id after the refused resolve: got %q, want %q", rec.NationalID, held.NationalID)
	}
	h.action(t, "NID-1", "resolve", map[string]string{"action": "delivered", "national_id": held.NationalID}, 200)
}

// TestCrossSiteBodiesCannotResolve: with access control off, a text/plain body (what a
// cross-site form can send) that would mark an unknown incident delivered under a made-up
// national id is refused, and so is a cross-site form's bulk replay; the incident stays
// unknown, so its report is not lost (issue 18). The same request as JSON with the CSRF
// header works.
func TestCrossSiteBodiesCannotResolve(t *testing.T) {
	h := newHarness(t, nil)
	h.makeUnknown(t, "XS-1")
	attack := func(ctype, path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, h.Base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := attack("text/plain", "/api/v1/incidents/datix/XS-1/resolve", `{"action":"delivered","national_id":"made-up-id"}`); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain resolve: got %d, want 415", code)
	}
	if code := attack("application/x-www-form-urlencoded", "/api/v1/replay", "state=unknown"); code != http.StatusUnsupportedMediaType {
		t.Errorf("cross-site form bulk replay: got %d, want 415", code)
	}
	if code := attack("application/json", "/api/v1/incidents/datix/XS-1/resolve", `{"action":"delivered","national_id":"made-up-id"}`); code != http.StatusForbidden {
		t.Errorf("JSON resolve without the CSRF header: got %d, want 403", code)
	}
	if rec, _ := h.record("datix", "XS-1"); rec.State != "unknown" || rec.NationalID != "" {
		t.Fatalf("after the refused requests: state %s, national id %q; want unknown with none", rec.State, rec.NationalID)
	}
	held := h.sim.Events()[0].ID
	if code, body := h.postJSON(t, "/api/v1/incidents/datix/XS-1/resolve", map[string]string{"action": "delivered", "national_id": held}); code != 200 {
		t.Errorf("resolve as JSON with the header: got %d %s, want 200", code, body)
	}
}
