package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/psgw/psgw/test/wait"
)

// TestSimStoredThenFaults: every way the national service can store an event and then answer
// as if it had not is a `psgw sim` flag and a PUT /_sim/faults field; the event is stored
// each time, and GET /_sim/requests says what was done.
func TestSimStoredThenFaults(t *testing.T) {
	t.Parallel()
	validPayload(t, "5")
	quick := &http.Client{Timeout: 2 * time.Second}
	post := func(t *testing.T, s *simProc) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, s.url+aePath, bytes.NewReader(mustJSON(t, validPayload(t, "5"))))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Ocp-Apim-Subscription-Key", simKey)
		resp, err := quick.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return resp.StatusCode, err
	}
	cases := []struct {
		name  string
		flags []string
		field map[string]any
		fault string
		check func(status int, err error) bool
	}{
		{"store then 504", []string{"--store-then-error-rate", "1"}, map[string]any{"store_then_error_rate": 1}, "store_then_error",
			func(status int, err error) bool { return err == nil && status == 504 }},
		{"store then 500", []string{"--store-then-error-rate", "1", "--store-then-status", "500"}, map[string]any{"store_then_error_rate": 1, "store_then_status": 500}, "store_then_error",
			func(status int, err error) bool { return err == nil && status == 500 }},
		{"store then slow", []string{"--store-then-slow-rate", "1", "--store-then-slow-for", "1m"}, map[string]any{"store_then_slow_rate": 1, "store_then_slow_for": "1m"}, "store_then_slow",
			func(status int, err error) bool { return err != nil }}, // the client's 2 s timeout
		{"store then reset", []string{"--store-then-reset-rate", "1"}, map[string]any{"store_then_reset_rate": 1}, "store_then_reset",
			func(status int, err error) bool { return err != nil }},
		{"body cut short", []string{"--truncate-rate", "1"}, map[string]any{"truncate_rate": 1}, "truncated",
			func(status int, err error) bool { return status == 201 && errors.Is(err, io.ErrUnexpectedEOF) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, how := range []string{"flag", "api"} {
				var s *simProc
				if how == "flag" {
					s = startSim(t, tc.flags...)
				} else {
					s = startSim(t)
					if r := doReq(t, http.MethodPut, s.url+"/_sim/faults", bytes.NewReader(mustJSON(t, tc.field)), nil); r.status != 200 {
						t.Fatalf("PUT /_sim/faults %v: %s", tc.field, r)
					}
				}
				if status, err := post(t, s); !tc.check(status, err) {
					t.Errorf("%s: got %d %v", how, status, err)
				}
				if n := len(s.events(t)); n != 1 {
					t.Errorf("%s: %d events stored, want 1", how, n)
				}
				var reqs []struct {
					Method string `json:"method"`
					Fault  string `json:"fault"`
					Stored bool   `json:"stored"`
					ID     string `json:"id"`
				}
				wait.Until(t, 5*time.Second, "the request in GET /_sim/requests", func() bool {
					_, b := httpGet(t, s.url+"/_sim/requests")
					return json.Unmarshal(b, &reqs) == nil && len(reqs) == 1
				})
				if q := reqs[0]; q.Method != "POST" || q.Fault != tc.fault || !q.Stored || q.ID == "" {
					t.Errorf("%s: journal %+v, want a stored POST with fault %s", how, q, tc.fault)
				}
			}
		})
	}
	t.Run("bad values refused", func(t *testing.T) {
		t.Parallel()
		s := startSim(t)
		for _, bad := range []string{`{"store_then_status":404}`, `{"truncate_rate":0.6,"store_then_reset_rate":0.6}`, `{"store_then_slow_for":"soon"}`} {
			if r := doReq(t, http.MethodPut, s.url+"/_sim/faults", bytes.NewReader([]byte(bad)), nil); r.status != 400 {
				t.Errorf("PUT /_sim/faults %s: %s, want 400", bad, r)
			}
		}
	})
}
