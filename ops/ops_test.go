package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/ingest/hl7mllp"
	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/ledger"
	"github.com/psgw/psgw/ops"
	"github.com/psgw/psgw/test/wait"
)

const (
	operatorToken = "alice-operator-token-0001"
	viewerToken   = "bob-viewer-token-000000001"
)

// startGateway runs a real gateway in demo mode (embedded JetStream, in-process simulator)
// with ops access control on.
func startGateway(t *testing.T, mutate func(*config.Config)) string {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	cfg.Ops.OperatorTokens = []string{"alice:" + operatorToken}
	cfg.Ops.ViewerTokens = []string{"bob:" + viewerToken}
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: true, Logger: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		gw.Stop(ctx)
	})
	return "http://" + gw.HTTPAddr()
}

func postIncident(t *testing.T, base, localID, description string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"source": "datix", "local_id": localID, "revision": 1, "event_type": "incident",
		"occurred_at": "2025-03-14", "description": description,
		"location": map[string]any{"organisation": "RRK"},
		"reporter": map[string]any{"role": "Nurse or midwife", "organisation": "RRK"},
	})
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: got %d, want 202", localID, resp.StatusCode)
	}
}

func call(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// waitState polls the API until the incident reaches want.
func waitState(t *testing.T, base, localID, want string) {
	t.Helper()
	wait.For(t, 20*time.Second, localID+" "+want, func() (bool, string) {
		_, b := call(t, "GET", base+"/api/v1/incidents/datix/"+localID, viewerToken, nil)
		var r ops.Record
		_ = json.Unmarshal(b, &r)
		return string(r.State) == want, "state " + string(r.State)
	})
}

func TestMetricsScrape(t *testing.T) {
	base := startGateway(t, nil)
	postIncident(t, base, "M-1", "Medication given late.")
	postIncident(t, base, "M-2", "Refuse this one [sim:reject]")
	waitState(t, base, "M-1", "delivered")
	waitState(t, base, "M-2", "rejected")

	tests := []struct {
		name   string
		labels map[string]string
		want   float64 // -1: present, any value
	}{
		{"psgw_ingest_received_total", map[string]string{"source": "datix", "kind": "incident"}, 2},
		{"psgw_ledger_incidents", map[string]string{"state": "delivered"}, 1},
		{"psgw_ledger_incidents", map[string]string{"state": "rejected"}, 1},
		{"psgw_ledger_incidents", map[string]string{"state": "unknown"}, 0},
		{"psgw_ledger_needs_review", map[string]string{"state": "rejected"}, 1},
		{"psgw_outbox_depth", nil, 0},
		{"psgw_outbox_oldest_age_seconds", nil, 0},
		{"psgw_ready", nil, 1},
		{"psgw_jetstream_up", nil, 1},
		{"psgw_build_info", map[string]string{"version": "test", "taxonomy_version": "5", "demo": "true"}, 1},
		{"psgw_jetstream_stream_messages", map[string]string{"stream": "PSGW_RAW"}, 2},
		{"psgw_jetstream_stream_bytes", map[string]string{"stream": "PSGW_OUTBOX"}, -1},
		{"psgw_jetstream_stream_max_bytes", map[string]string{"stream": "PSGW_RAW"}, -1},
		{"psgw_jetstream_consumer_pending", map[string]string{"stream": "PSGW_OUTBOX"}, -1},
		{"psgw_jetstream_consumer_ack_pending", map[string]string{"stream": "PSGW_OUTBOX"}, -1},
		{"psgw_delivered_last_5m", nil, 1},
		{"psgw_forwarder_delivered_total", nil, -1},
		{"psgw_forwarder_failed_total", map[string]string{"reason": "rejected"}, 1},
		{"psgw_forwarder_failed_total", map[string]string{"reason": "exhausted"}, 0},
		{"psgw_forwarder_delivered_total", map[string]string{"method": "PUT"}, 0},
		{"psgw_mapper_mapped_total", nil, 2},
		{"psgw_mapper_quarantined_total", nil, 0},
		{"psgw_mapper_redactions_total", nil, 0},
		{"psgw_ingest_records_total", map[string]string{"adapter": "httppush"}, 2},
	}
	// The ledger index, the outbox's removal of an acked message and the mapper's counter
	// all settle a moment after the ledger says delivered or rejected, so scrape until every
	// fixed figure holds or the deadline passes, then report whichever still differ.
	settled := func(fams map[string]*dto.MetricFamily) bool {
		for _, tc := range tests {
			if got := value(fams, tc.name, tc.labels); got < 0 || (tc.want >= 0 && got != tc.want) {
				return false
			}
		}
		return true
	}
	var fams map[string]*dto.MetricFamily
	wait.Until(t, 10*time.Second, "every metric at its value", func() bool {
		code, body := call(t, "GET", base+"/metrics", "", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: got %d, want 200 (metrics are open by default)", code)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		if fams, err = parser.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
			t.Fatalf("parsing /metrics: %v", err)
		}
		return settled(fams)
	})
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s%v", tc.name, tc.labels), func(t *testing.T) {
			got := value(fams, tc.name, tc.labels)
			if got < 0 {
				t.Fatalf("%s%v: not found", tc.name, tc.labels)
			}
			if tc.want >= 0 && got != tc.want {
				t.Errorf("%s%v: got %v, want %v", tc.name, tc.labels, got, tc.want)
			}
		})
	}
	if f := fams["psgw_forwarder_delivery_latency_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("psgw_forwarder_delivery_latency_seconds: got %v, want a histogram", f.GetType())
	}
	for name := range fams {
		if !strings.HasPrefix(name, "psgw_") {
			t.Errorf("metric %s: every metric name must start with psgw_ (no global-registry collectors)", name)
		}
	}
}

// value sums the samples of name whose labels include want; -1 when there are none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	sum, found := 0.0, false
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return sum
}

func TestProtectedMetricsAndHealth(t *testing.T) {
	base := startGateway(t, func(c *config.Config) { c.Ops.ProtectMetrics, c.Ops.ProtectHealth = true, true })
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := call(t, "GET", base+path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: got %d, want 401", path, code)
		}
		if code, _ := call(t, "GET", base+path, viewerToken, nil); code != http.StatusOK {
			t.Errorf("GET %s as viewer: got %d, want 200", path, code)
		}
	}
}

func TestAccessControl(t *testing.T) {
	base := startGateway(t, nil)
	postIncident(t, base, "A-1", "Refuse this one [sim:reject]")
	waitState(t, base, "A-1", "rejected")

	tests := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"health open", "GET", "/healthz", "", nil, 200},
		{"metrics open", "GET", "/metrics", "", nil, 200},
		{"status needs a token", "GET", "/api/v1/status", "", nil, 401},
		{"wrong token", "GET", "/api/v1/status", "not-a-real-token-at-all", nil, 401},
		{"viewer reads status", "GET", "/api/v1/status", viewerToken, nil, 200},
		{"viewer reads a record", "GET", "/api/v1/incidents/datix/A-1", viewerToken, nil, 200},
		{"viewer searches", "GET", "/api/v1/incidents?state=rejected", viewerToken, nil, 200},
		{"viewer may not replay", "POST", "/api/v1/incidents/datix/A-1/replay", viewerToken, nil, 403},
		{"viewer may not review", "POST", "/api/v1/incidents/datix/A-1/review", viewerToken, nil, 403},
		{"viewer may not resolve", "POST", "/api/v1/incidents/datix/A-1/resolve", viewerToken, map[string]string{"action": "resend"}, 403},
		{"viewer may not bulk replay", "POST", "/api/v1/replay", viewerToken, map[string]any{"dry_run": true}, 403},
		{"anonymous may not replay", "POST", "/api/v1/incidents/datix/A-1/replay", "", nil, 401},
		{"page sends to sign-in", "GET", "/", "", nil, 303},
		{"operator reviews", "POST", "/api/v1/incidents/datix/A-1/review", operatorToken, nil, 200},
		{"operator bulk dry run", "POST", "/api/v1/replay", operatorToken, map[string]any{"dry_run": true, "state": "rejected"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := call(t, tc.method, base+tc.path, tc.token, tc.body); code != tc.want {
				t.Errorf("%s %s: got %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
		})
	}

	// The review is in the history, with who did it.
	_, b := call(t, "GET", base+"/api/v1/incidents/datix/A-1", viewerToken, nil)
	var rec ops.Record
	_ = json.Unmarshal(b, &rec)
	last := rec.History[len(rec.History)-1]
	if last.Actor != "alice (operator)" {
		t.Errorf("last history entry actor: got %q, want %q", last.Actor, "alice (operator)")
	}

	// Ingest keeps its own tokens (none here): no ops token needed.
	postIncident(t, base, "A-2", "Fall on ward.")

	_, b = call(t, "GET", base+"/api/v1/whoami", viewerToken, nil)
	if !strings.Contains(string(b), `"actor":"bob (viewer)"`) {
		t.Errorf("whoami as viewer: got %s", b)
	}
}

// TestBrowserSessionNeedsCSRF checks that a signed-in browser's cookie alone cannot act:
// every POST needs the session's CSRF token, which only the page itself knows.
func TestBrowserSessionNeedsCSRF(t *testing.T) {
	base := startGateway(t, nil)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"token": {operatorToken}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "alice · operator") {
		t.Fatalf("sign in: got %d, want the overview for alice", resp.StatusCode)
	}
	i := strings.Index(string(page), `name="csrf-token" content="`)
	if i < 0 {
		t.Fatal("overview has no csrf-token meta")
	}
	csrf := string(page[i+len(`name="csrf-token" content="`):])
	csrf = csrf[:strings.IndexByte(csrf, '"')]

	post := func(withCSRF bool) int {
		req, _ := http.NewRequest("POST", base+"/api/v1/replay", strings.NewReader(`{"dry_run":true}`))
		req.Header.Set("Content-Type", "application/json")
		if withCSRF {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(false); got != http.StatusForbidden {
		t.Errorf("POST with the cookie only: got %d, want 403", got)
	}
	if got := post(true); got != http.StatusOK {
		t.Errorf("POST with the cookie and CSRF token: got %d, want 200", got)
	}

	resp, err = c.PostForm(base+"/login", url.Values{"token": {"wrong-token-wrong-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign in with a wrong token: got %d, want 401", resp.StatusCode)
	}
}

func TestSearchAPI(t *testing.T) {
	base := startGateway(t, nil)
	for i := 1; i <= 3; i++ {
		postIncident(t, base, fmt.Sprintf("S-%d", i), "Incident text.")
	}
	postIncident(t, base, "OTHER/with slash", "Incident text.")
	waitState(t, base, "S-3", "delivered")
	waitState(t, base, "OTHER/with slash", "delivered")

	var p ledger.Page
	wait.For(t, 10*time.Second, "4 delivered incidents listed", func() (bool, string) {
		_, b := call(t, "GET", base+"/api/v1/incidents?state=delivered&limit=2", viewerToken, nil)
		p = ledger.Page{}
		_ = json.Unmarshal(b, &p)
		return p.Total == 4, fmt.Sprintf("total %d", p.Total)
	})
	if p.Total != 4 || len(p.Items) != 2 {
		t.Fatalf("state=delivered&limit=2: got total %d, %d items, want 4 and 2", p.Total, len(p.Items))
	}
	_, b := call(t, "GET", base+"/api/v1/incidents?local_id=s-2", viewerToken, nil)
	_ = json.Unmarshal(b, &p)
	if p.Total != 1 || p.Items[0].LocalID != "S-2" {
		t.Errorf("local_id=s-2: got %+v, want S-2 only", p)
	}
	_, b = call(t, "GET", base+"/api/v1/incidents?offset=3&limit=2", viewerToken, nil)
	_ = json.Unmarshal(b, &p)
	if p.Total != 4 || len(p.Items) != 1 {
		t.Errorf("offset=3: got total %d, %d items, want 4 and 1", p.Total, len(p.Items))
	}
	if code, _ := call(t, "GET", base+"/api/v1/incidents?state=lost", viewerToken, nil); code != 400 {
		t.Errorf("unknown state: got %d, want 400", code)
	}
	if code, _ := call(t, "GET", base+"/api/v1/incidents/datix/OTHER/with%20slash", viewerToken, nil); code != 200 {
		t.Errorf("record of a local id with a slash: got %d, want 200", code)
	}
}
