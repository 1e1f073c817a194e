package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/httppush"
	"github.com/psgw/psgw/test/wait"
)

// TestIngestBadInput sends input breaking the incident's rules (docs/incident.schema.json;
// README, "Send an incident") to a real gateway: each gets a clear answer naming the
// problem, and the gateway goes on accepting good incidents afterwards.
func TestIngestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	good := func(id string) map[string]any { return incident(id, 1, describe(id, 1)) }
	with := func(mut func(m map[string]any)) map[string]any {
		m := good("BAD-1")
		mut(m)
		return m
	}
	cases := []struct {
		name      string
		body      any
		wantField string
		wantText  string
	}{
		{"malformed JSON", `{"source": "datix", `, "", "malformed JSON"},
		{"not an object", `[1,2,3]`, "", "one JSON object"},
		{"trailing data", `{"source":"datix"} {}`, "", "exactly one JSON object"},
		{"empty body", ``, "", "empty"},
		{"invalid UTF-8", []byte("{\"source\":\"datix\",\"description\":\"caf\xe9\"}"), "", "UTF-8"},
		{"wrong type: revision string", with(func(m map[string]any) { m["revision"] = "2" }), "revision", "whole number"},
		{"wrong type: revision fraction", with(func(m map[string]any) { m["revision"] = 1.5 }), "revision", "whole number"},
		{"wrong type: patients object", with(func(m map[string]any) { m["patients"] = map[string]any{} }), "patients", "array"},
		{"wrong type: description number", with(func(m map[string]any) { m["description"] = 42 }), "description", "string"},
		{"missing source", with(func(m map[string]any) { delete(m, "source") }), "source", "required"},
		{"bad source", with(func(m map[string]any) { m["source"] = "Datix System" }), "source", "a-z"},
		{"missing local_id", with(func(m map[string]any) { delete(m, "local_id") }), "local_id", "required"},
		{"long local_id", with(func(m map[string]any) { m["local_id"] = strings.Repeat("x", 129) }), "local_id", "128"},
		{"zero revision", with(func(m map[string]any) { m["revision"] = 0 }), "revision", "at least 1"},
		{"bad event type", with(func(m map[string]any) { m["event_type"] = "accident" }), "event_type", "incident, risk, outcome or good_care"},
		{"missing occurred_at", with(func(m map[string]any) { delete(m, "occurred_at") }), "occurred_at", "required"},
		{"bad occurred_at", with(func(m map[string]any) { m["occurred_at"] = "14/03/2025" }), "occurred_at", "RFC 3339"},
		{"future occurred_at", with(func(m map[string]any) { m["occurred_at"] = time.Now().Add(72 * time.Hour).Format(time.RFC3339) }), "occurred_at", "future"},
		{"missing description", with(func(m map[string]any) { m["description"] = "  " }), "description", "required"},
		{"long description", with(func(m map[string]any) { m["description"] = strings.Repeat("a", 32001) }), "description", "32000"},
		{"bad NHS number", with(func(m map[string]any) { m["patients"].([]map[string]any)[0]["nhs_number"] = "9434765918" }), "patients[0].nhs_number", "Modulus 11"},
		{"short NHS number", with(func(m map[string]any) { m["patients"].([]map[string]any)[0]["nhs_number"] = "943476" }), "patients[0].nhs_number", "10 digits"},
		{"bad sex", with(func(m map[string]any) { m["patients"].([]map[string]any)[0]["sex"] = "F" }), "patients[0].sex", "female"},
		{"impossible birth date", with(func(m map[string]any) { m["patients"].([]map[string]any)[0]["date_of_birth"] = "2023-02-30" }), "patients[0].date_of_birth", "real date"},
		{"birth after incident", with(func(m map[string]any) { m["patients"].([]map[string]any)[0]["date_of_birth"] = "2025-06-01" }), "patients[0].date_of_birth", "after occurred_at"},
		{"too many patients", with(func(m map[string]any) {
			ps := make([]map[string]any, 101)
			for i := range ps {
				ps[i] = map[string]any{"sex": "male"}
			}
			m["patients"] = ps
		}), "patients", "at most 100"},
		{"bad ODS code", with(func(m map[string]any) { m["location"] = map[string]any{"organisation": "rrk!"} }), "location.organisation", "ODS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.post(tc.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("got HTTP %d (%s), want 400", r.Status, r.Error)
			}
			text := r.Error
			found := tc.wantField == ""
			for _, p := range r.Problems {
				text += " | " + p.Field + ": " + p.Message
				if p.Field == tc.wantField && strings.Contains(p.Message, tc.wantText) {
					found = true
				}
			}
			if !found || (tc.wantField == "" && !strings.Contains(text, tc.wantText)) {
				t.Fatalf("got problems %q, want field %q with a message containing %q", text, tc.wantField, tc.wantText)
			}
			if strings.Contains(text, "9434765918") {
				t.Errorf("the answer repeats the NHS number: %s", text)
			}
		})
	}

	t.Run("wrong content type", func(t *testing.T) {
		b, _ := json.Marshal(good("CT-1"))
		resp, err := http.Post(h.Base+"/api/v1/incidents", "text/plain", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("got %d, want 415", resp.StatusCode)
		}
	})
	t.Run("content type with charset", func(t *testing.T) {
		b, _ := json.Marshal(good("CT-2"))
		resp, err := http.Post(h.Base+"/api/v1/incidents", "application/json; charset=utf-8", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("got %d, want 202", resp.StatusCode)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		big := strings.Repeat("x", 2<<20)
		r := h.post(`{"source":"datix","local_id":"BIG","description":"` + big + `"}`)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d, want 413", r.Status)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, h.Base+"/api/v1/incidents", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("got %d, want 405", resp.StatusCode)
		}
	})
	t.Run("unknown incident", func(t *testing.T) {
		if _, code := h.record("datix", "NEVER-SENT"); code != http.StatusNotFound {
			t.Fatalf("got %d, want 404", code)
		}
	})
	t.Run("still accepts good input", func(t *testing.T) {
		if r := h.post(good("AFTER-BAD")); r.Status != http.StatusAccepted {
			t.Fatalf("got %d (%s), want 202", r.Status, r.Error)
		}
		wait.For(t, 10*time.Second, "delivery", func() (bool, string) {
			rec, _ := h.record("datix", "AFTER-BAD")
			return rec.State == "delivered", string(rec.State)
		})
	})
}

func TestIngestAuth(t *testing.T) {
	const token = "0123456789abcdef-token"
	h := newHarness(t, func(c *config.Config) {
		c.Adapters[httppush.Section].(*httppush.Config).Tokens = httppush.Tokens(token)
	})
	b, _ := json.Marshal(incident("AUTH-1", 1, describe("AUTH-1", 1)))
	for _, tc := range []struct {
		name, header string
		want         int
	}{
		{"missing", "", 401},
		{"wrong", "Bearer wrong-token-wrong-token", 401},
		{"not bearer", "Basic " + token, 401},
		{"right", "Bearer " + token, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.Base+"/api/v1/incidents", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestIngestStorageFull fills the raw stream to its limit: ingest must answer 503 with
// Retry-After rather than accept, and nothing already stored may be dropped to make room.
func TestIngestStorageFull(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Queue.RawMaxBytes = 1 << 20
		c.Queue.OutboxMaxBytes = 1 << 20
		c.Queue.MaxStoreBytes = 64 << 20
	})
	accepted := 0
	var full postResult
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("FILL-%03d", i)
		r := h.post(incident(id, 1, describe(id, 1)+strings.Repeat(" padding", 3000)))
		if r.Status == http.StatusAccepted {
			accepted++
			continue
		}
		full = r
		break
	}
	if full.Status != http.StatusServiceUnavailable {
		t.Fatalf("after %d accepted: got %d, want 503 once the stream is full", accepted, full.Status)
	}
	if full.RetryAfter == "" {
		t.Error("503 without Retry-After")
	}
	if accepted == 0 {
		t.Fatal("nothing was accepted before the stream filled")
	}
	// Everything accepted is still there and is delivered.
	wait.For(t, 30*time.Second, "every accepted incident delivered", func() (bool, string) {
		for i := 0; i < accepted; i++ {
			id := fmt.Sprintf("FILL-%03d", i)
			if rec, _ := h.record("datix", id); rec.State != "delivered" {
				return false, id + " is " + string(rec.State)
			}
		}
		return true, ""
	})
}

// TestResendAfterDuplicateWindow: a re-send older than JetStream's duplicate window is still
// answered duplicate: true, from the ledger, and creates nothing.
func TestResendAfterDuplicateWindow(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Queue.DuplicateWindow = time.Second })
	in := incident("WIN-1", 0, describe("WIN-1", 1))
	if r := h.post(in); r.Status != 202 || r.Duplicate {
		t.Fatalf("got %d duplicate=%v", r.Status, r.Duplicate)
	}
	wait.For(t, 10*time.Second, "delivery", func() (bool, string) {
		rec, _ := h.record("datix", "WIN-1")
		return rec.State == "delivered", string(rec.State)
	})
	time.Sleep(1500 * time.Millisecond) // let JetStream's one-second window pass: nothing to await
	if r := h.post(in); r.Status != 202 || !r.Duplicate {
		t.Fatalf("re-send after the window: got %d duplicate=%v, want 202 duplicate=true", r.Status, r.Duplicate)
	}
	if st := h.sim.Stats(); st.Creates != 1 || st.Updates != 0 {
		t.Errorf("got %d creates and %d updates, want 1 and 0", st.Creates, st.Updates)
	}
}
