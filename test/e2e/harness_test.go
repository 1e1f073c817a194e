package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
)

const simKey = "e2e-subscription-key"

// harness is a real gateway (embedded JetStream on a temp dir) delivering to a real simulator
// over HTTP. The simulator outlives gateway restarts so that it can count every create.
type harness struct {
	t       *testing.T
	dataDir string
	cfg     config.Config
	sim     *sim.Simulator
	simSrv  *httptest.Server
	gw      *gateway.Gateway
	base    string
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
	cfg := config.Default()
	cfg.DataDir = h.dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	cfg.National.BaseURL = h.simSrv.URL
	cfg.National.SubscriptionKey = simKey
	cfg.National.BackoffInitial = 20 * time.Millisecond
	cfg.National.BackoffMax = 200 * time.Millisecond
	cfg.National.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	h.cfg = cfg
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) logger() zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.InfoLevel)
	}
	return zerolog.Nop()
}

func (h *harness) start() {
	h.t.Helper()
	gw, err := gateway.Start(context.Background(), h.cfg, gateway.Options{Logger: h.logger()})
	if err != nil {
		h.t.Fatalf("starting gateway: %v", err)
	}
	h.gw = gw
	h.base = "http://" + gw.HTTPAddr()
}

func (h *harness) stop() {
	if h.gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.gw.Stop(ctx)
	h.gw = nil
}

func (h *harness) restart() {
	h.stop()
	h.start()
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
	resp, err := http.Post(h.base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
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
	resp, err := http.Get(h.base + "/api/v1/incidents/" + source + "/" + localID)
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
