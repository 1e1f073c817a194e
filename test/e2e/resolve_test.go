package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/ops"

	"github.com/psgw/psgw/test/wait"
)

// TestResolvingUnknownIsAMinutesWork: an unknown incident's record and page give what an
// operator needs to find it in LFPSE (when it was sent, the event type, date and location
// sent, the local id) and the two choices, and a bulk resolve sends every unknown incident a
// filter selects again, each flagged a possible duplicate (issue 13).
func TestResolvingUnknownIsAMinutesWork(t *testing.T) {
	h := newHarness(t, nil)
	before := time.Now().UTC()
	for _, id := range []string{"RES-1", "RES-2", "RES-3"} {
		h.makeUnknown(t, id)
	}
	rec, _ := h.record("datix", "RES-1")
	u := rec.UnknownSend
	if u == nil {
		t.Fatalf("unknown record without unknown_send: %+v", rec)
	}
	if u.SentAt.Before(before.Add(-time.Second)) || u.SentAt.After(time.Now()) || u.EventType != "incident" ||
		!strings.HasPrefix(u.EventDate, "2025-03-14") || u.Location != "RRK" || u.Revision != 1 {
		t.Errorf("unknown_send: got %+v, want the send time, incident, 2025-03-14…, RRK, revision 1", *u)
	}

	resp, err := http.Get(h.Base + "/incidents/datix/RES-1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`id="sent-at"`, `id="sent-type">incident<`, `id="sent-date">2025-03-14`, `id="sent-location" class="mono">RRK<`,
		`id="sent-local-id" class="mono">RES-1`, `id="resolve-there"`, `id="resolve-not-there"`, "It is there: record it", "It is not there: send it again"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
	resp, err = http.Get(h.Base + "/incidents?state=unknown&source=datix")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="btn-resend-all"`) || !strings.Contains(string(page), "send all 3 again") ||
		!strings.Contains(string(page), `data-api="/api/v1/resolve"`) {
		t.Errorf("the unknown list offers no bulk resend of its 3")
	}

	// One of them LFPSE holds: resolved on its own, with its id.
	evs := h.sim.Events()
	h.action(t, "RES-3", "resolve", map[string]string{"action": "delivered", "national_id": evs[2].ID, "national_reference": evs[2].Reference}, 200)

	code, body := h.postJSON(t, "/api/v1/resolve", map[string]any{"action": "delivered"})
	if code != http.StatusBadRequest {
		t.Errorf("bulk resolve as delivered: got %d %s, want 400", code, body)
	}
	code, body = h.postJSON(t, "/api/v1/resolve", map[string]any{"action": "resend", "source": "datix", "dry_run": true})
	var res ops.BulkResolveResult
	_ = json.Unmarshal(body, &res)
	if code != 200 || res.Matched != 2 || res.Resolved != 0 || len(res.Items) != 2 {
		t.Fatalf("dry run: got %d %s, want the 2 still unknown matched and none resolved", code, body)
	}
	if c := h.sim.Stats().Creates; c != 3 {
		t.Fatalf("a dry run sent something: %d creates", c)
	}
	code, body = h.postJSON(t, "/api/v1/resolve", map[string]any{"action": "resend", "source": "datix"})
	res = ops.BulkResolveResult{}
	_ = json.Unmarshal(body, &res)
	if code != 200 || res.Matched != 2 || res.Resolved != 2 || len(res.Errors) != 0 {
		t.Fatalf("bulk resend: got %d %s, want 2 matched and resolved", code, body)
	}
	for _, id := range []string{"RES-1", "RES-2"} {
		wait.For(t, 10*time.Second, id+" sent again and delivered", func() (bool, string) {
			rec, _ := h.record("datix", id)
			return rec.State == "delivered" && rec.PossibleDuplicate && rec.UnknownSend == nil, string(rec.State)
		})
	}
	if c := h.sim.Stats().Creates; c != 5 {
		t.Errorf("%d creates, want 5: three first POSTs, two sent again", c)
	}
	if rec, _ := h.record("datix", "RES-3"); rec.State != "delivered" || rec.PossibleDuplicate {
		t.Errorf("RES-3, resolved as delivered, got %s possible_duplicate=%v", rec.State, rec.PossibleDuplicate)
	}
}
