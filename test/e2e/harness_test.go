package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/gwtest"
)

const simKey = "e2e-subscription-key"

// harness is a real gateway (embedded JetStream on a temp dir) delivering to a real simulator
// over HTTP. The simulator outlives gateway restarts so that it can count every create.
type harness struct {
	t               *testing.T
	dataDir         string
	sim             *sim.Simulator
	simSrv          *httptest.Server
	*gwtest.Gateway // the gateway under test: GW, Base, Cfg, Start, Stop, Restart
	// rejectWrites makes the national service refuse every POST and PUT with 422.
	rejectWrites atomic.Bool
}

func newHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	s, err := gateway.NewSimulator([]string{simKey}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dataDir: t.TempDir(), sim: s}
	h.simSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.rejectWrites.Load() && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","details":{"text":"refused by the test"}}]}`)
			return
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(h.simSrv.Close)
	cfg := gwtest.Config(h.dataDir, h.simSrv.URL, simKey)
	if mutate != nil {
		mutate(&cfg)
	}
	h.Gateway = gwtest.New(t, cfg, zerolog.InfoLevel)
	h.Start()
	return h
}

type postResult struct {
	Status    int
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
	Error     string `json:"error"`
	Problems  []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"problems"`
	RetryAfter string
}

func (h *harness) post(body any) postResult {
	h.t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			h.t.Fatal(err)
		}
	}
	resp, err := http.Post(h.Base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
	if err != nil {
		h.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var r postResult
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &r)
	r.Status = resp.StatusCode
	r.RetryAfter = resp.Header.Get("Retry-After")
	return r
}

func (h *harness) record(source, localID string) (ops.Record, int) {
	h.t.Helper()
	resp, err := http.Get(h.Base + "/api/v1/incidents/" + source + "/" + localID)
	if err != nil {
		h.t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	var r ops.Record
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r, resp.StatusCode
}

func incident(localID string, revision int, description string) map[string]any {
	in := map[string]any{
		"source":            "datix",
		"local_id":          localID,
		"event_type":        "incident",
		"occurred_at":       "2025-03-14T09:30:00Z",
		"description":       description,
		"immediate_actions": "Dose given; prescriber informed",
		"patients": []map[string]any{{
			"nhs_number": "9434765919", "date_of_birth": "1975-03-01", "sex": "female",
			"physical_harm": "low", "psychological_harm": "none",
		}},
		"location": map[string]any{"organisation": "RRK"},
		"reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	}
	if revision > 0 {
		in["revision"] = revision
	}
	return in
}

func describe(localID string, revision int) string {
	return fmt.Sprintf("Incident %s revision %d: scheduled IV antibiotic dose given late.", localID, revision)
}
