// Package pull holds the end-to-end tests of the pull adapters: a real gateway in-process
// (embedded JetStream on a temp dir) with the CSV drop-folder or SQL polling adapter,
// delivering to the national-service simulator over HTTP.
package pull

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/sim"
	"github.com/psgw/psgw/test/gwtest"
	"github.com/psgw/psgw/test/wait"
)

const simKey = "pull-subscription-key"

// write is one create or amendment the simulator accepted, in the order it accepted them.
type write struct {
	Method   string
	LocalRef string // "DX-0001"
	Revision int    // from the description "… revision N …"
}

var descRef = regexp.MustCompile(`(DX-\d+) revision (\d+)`)

// harness is a real gateway delivering to a real simulator; the simulator outlives gateway
// restarts and records every write it accepted.
type harness struct {
	t               *testing.T
	sim             *sim.Simulator
	simSrv          *httptest.Server
	*gwtest.Gateway // the gateway under test: GW, Base, Cfg, Start, Stop, Restart

	mu     sync.Mutex
	writes []write
}

// datixColumns is the header mapping of a Datix-style incident export.
var datixColumns = map[string]string{
	"local_id": "Ref", "revision": "Version", "event_type": "Type", "occurred_at": "Incident date",
	"description": "Description", "immediate_actions": "Action taken", "patient.nhs_number": "NHS number",
	"patient.date_of_birth": "DOB", "patient.sex": "Sex", "patient.physical_harm": "Harm",
	"patient.psychological_harm": "Psychological harm", "location.organisation": "Site",
	"reporter.role": "Reporter role", "reporter.organisation": "Reporting org",
}

func newHarness(t *testing.T, mutate func(*config.Config)) *harness {
	t.Helper()
	s, err := gateway.NewSimulator([]string{simKey}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sim: s}
	h.simSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			s.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w}
		s.ServeHTTP(sw, r)
		if sw.status/100 == 2 {
			var res struct {
				Description string `json:"description"`
			}
			_ = json.Unmarshal(body, &res)
			if m := descRef.FindStringSubmatch(res.Description); m != nil {
				rev, _ := strconv.Atoi(m[2])
				h.mu.Lock()
				h.writes = append(h.writes, write{Method: r.Method, LocalRef: m[1], Revision: rev})
				h.mu.Unlock()
			}
		}
	}))
	t.Cleanup(h.simSrv.Close)
	cfg := gwtest.Config(t.TempDir(), h.simSrv.URL, simKey)
	cfg.Sources = map[string]config.SourceConfig{"datix": {CSVColumns: datixColumns}}
	if mutate != nil {
		mutate(&cfg)
	}
	h.Gateway = gwtest.New(t, cfg, zerolog.WarnLevel)
	h.Start()
	return h
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (h *harness) record(localID string) (ops.Record, int) {
	h.t.Helper()
	resp, err := http.Get(h.Base + "/api/v1/incidents/datix/" + url.PathEscape(localID))
	if err != nil {
		h.t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	var r ops.Record
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r, resp.StatusCode
}

func (h *harness) accepted() []write {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]write(nil), h.writes...)
}

// waitSettled waits until every incident in want is delivered at the given revision, or
// unknown: a send whose outcome the gateway could not know (a POST slower than the national
// timeout, a stop mid-POST). Unknown is a legitimate, visible outcome; the caller checks that
// such an incident was created at most once. It returns the unknown ones.
func (h *harness) waitSettled(want map[string]int) map[string]bool {
	h.t.Helper()
	unknown := map[string]bool{}
	wait.For(h.t, 60*time.Second, "incidents delivered or unknown", func() (bool, string) {
		for id, rev := range want {
			if unknown[id] {
				continue
			}
			r, code := h.record(id)
			if code == 200 && r.State == "unknown" {
				unknown[id] = true
				continue
			}
			if code != 200 || r.State != "delivered" || r.Revision != rev {
				return false, id + ": " + strconv.Itoa(code) + " " + string(r.State) + " revision " + strconv.Itoa(r.Revision) + " " + r.LastError
			}
		}
		return true, ""
	})
	return unknown
}

// waitDelivered waits until every incident in want is delivered at the given revision.
func (h *harness) waitDelivered(want map[string]int) {
	h.t.Helper()
	wait.For(h.t, 60*time.Second, "incidents delivered", func() (bool, string) {
		for id, rev := range want {
			r, code := h.record(id)
			if code != 200 || r.State != "delivered" || r.Revision != rev {
				return false, id + ": " + strconv.Itoa(code) + " " + string(r.State) + " revision " + strconv.Itoa(r.Revision) + " " + r.LastError
			}
		}
		return true, ""
	})
}
