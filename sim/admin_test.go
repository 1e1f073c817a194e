package sim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestAdminEndpoints(t *testing.T) {
	h := newHarness(t, nil)
	noKey := map[string]string{}
	created := h.post(payload(t, "5")).json(t)

	r := h.must(http.MethodGet, "/_sim/events", nil, noKey)
	var evs []Event
	if err := json.Unmarshal(r.body, &evs); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /_sim/events: %d %v", r.status, err)
	}
	if len(evs) != 1 || evs[0].ID != created["id"] || evs[0].Reference != referenceNumber(created) || len(evs[0].Resource) == 0 {
		t.Errorf("events: got %+v", evs)
	}

	var st Stats
	r = h.must(http.MethodGet, "/_sim/stats", nil, noKey)
	if err := json.Unmarshal(r.body, &st); err != nil || st.Creates != 1 || st.Events != 1 {
		t.Errorf("GET /_sim/stats: got %+v (%v)", st, err)
	}

	r = h.must(http.MethodPut, "/_sim/faults", []byte(`{"rate_limit_rate":1,"retry_after":"3s","storm_for":"1m"}`), noKey)
	if r.status != http.StatusOK {
		t.Fatalf("PUT /_sim/faults: got %d %s", r.status, r.body)
	}
	if f := h.sim.Faults(); f.RateLimitRate != 1 || f.RetryAfter != 3*time.Second || f.StormUntil.IsZero() || f.StormFor != 0 {
		t.Errorf("faults after PUT: got %+v", f)
	}
	var f Faults
	if err := json.Unmarshal(h.must(http.MethodGet, "/_sim/faults", nil, noKey).body, &f); err != nil || f.RetryAfter != 3*time.Second {
		t.Errorf("GET /_sim/faults: got %+v (%v)", f, err)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"nope":1}`, `not json`} {
		if r := h.must(http.MethodPut, "/_sim/faults", []byte(bad), noKey); r.status != http.StatusBadRequest {
			t.Errorf("PUT /_sim/faults %s: got %d, want 400", bad, r.status)
		}
	}
	h.must(http.MethodPut, "/_sim/faults", []byte(`{}`), noKey)
	if f := h.sim.Faults(); f != (Faults{}) {
		t.Errorf("PUT {} should clear the faults: got %+v", f)
	}

	if r := h.must(http.MethodPut, "/_sim/keys", []byte(`["rotated"]`), noKey); r.status != http.StatusNoContent {
		t.Fatalf("PUT /_sim/keys: got %d %s", r.status, r.body)
	}
	if r := h.must(http.MethodGet, metadataPath, nil, map[string]string{keyHeader: "rotated"}); r.status != http.StatusOK {
		t.Errorf("rotated key: got %d", r.status)
	}
	for _, bad := range []string{`[]`, `[""]`, `"k"`} {
		if r := h.must(http.MethodPut, "/_sim/keys", []byte(bad), noKey); r.status != http.StatusBadRequest {
			t.Errorf("PUT /_sim/keys %s: got %d, want 400", bad, r.status)
		}
	}

	if r := h.must(http.MethodPost, "/_sim/reset", nil, noKey); r.status != http.StatusNoContent {
		t.Fatalf("POST /_sim/reset: got %d", r.status)
	}
	if st := h.sim.Stats(); st.Events != 0 || st.Creates != 0 || len(h.sim.Events()) != 0 {
		t.Errorf("after reset: got %+v", st)
	}

	if r := h.must(http.MethodDelete, "/_sim/events", nil, noKey); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET" {
		t.Errorf("DELETE /_sim/events: got %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if r := h.must(http.MethodGet, "/_sim/nothing", nil, noKey); r.status != http.StatusNotFound {
		t.Errorf("GET /_sim/nothing: got %d", r.status)
	}
}
