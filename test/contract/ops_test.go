package contract

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/psgw/psgw/test/wait"
)

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text format: %v", err)
	}
	return fams
}

func scrape(t *testing.T, g *gateway) map[string]*dto.MetricFamily {
	t.Helper()
	r := doReq(t, http.MethodGet, g.url("/metrics"), nil, nil)
	if r.status != 200 {
		t.Fatalf("GET /metrics: %s", r)
	}
	return parseMetrics(t, string(r.body))
}

// metricWant describes a metric the contract requires, by meaning rather than exact name.
type metricWant struct {
	what  string
	name  *regexp.Regexp
	typ   dto.MetricType
	label string // every sample carries this label
}

var (
	wantDelivered = metricWant{"delivered", regexp.MustCompile(`^psgw_.*deliver.*_total$`), dto.MetricType_COUNTER, ""}
	wantFailed    = metricWant{"failed by reason", regexp.MustCompile(`^psgw_.*fail.*_total$`), dto.MetricType_COUNTER, "reason"}
	wantRetries   = metricWant{"retries", regexp.MustCompile(`^psgw_.*retr.*_total$`), dto.MetricType_COUNTER, ""}
	wantDepth     = metricWant{"outbox depth", regexp.MustCompile(`^psgw_.*outbox.*depth|^psgw_.*depth.*outbox`), dto.MetricType_GAUGE, ""}
	wantOldest    = metricWant{"age of the oldest undelivered event", regexp.MustCompile(`^psgw_.*(oldest|undelivered).*(age|seconds)`), dto.MetricType_GAUGE, ""}
	wantLatency   = metricWant{"delivery latency histogram", regexp.MustCompile(`^psgw_.*deliver.*(latency|duration)|^psgw_.*(latency|duration).*deliver`), dto.MetricType_HISTOGRAM, ""}
	wantReceived  = metricWant{"events received per source", regexp.MustCompile(`^psgw_.*receiv.*_total$`), dto.MetricType_COUNTER, "source"}
)

// find returns the families matching w; it reports what is missing.
func (w metricWant) find(t *testing.T, fams map[string]*dto.MetricFamily) []*dto.MetricFamily {
	t.Helper()
	var out []*dto.MetricFamily
	var near []string
	for name, f := range fams {
		if !w.name.MatchString(name) {
			continue
		}
		if f.GetType() != w.typ {
			near = append(near, fmt.Sprintf("%s (%s)", name, f.GetType()))
			continue
		}
		if len(f.GetMetric()) == 0 {
			near = append(near, name+" (no samples)")
			continue
		}
		ok := true
		if w.label != "" {
			for _, m := range f.GetMetric() {
				if labelValue(m, w.label) == "" {
					ok = false
				}
			}
		}
		if !ok {
			near = append(near, name+" (samples without label "+w.label+")")
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		var names []string
		for n := range fams {
			if !strings.HasPrefix(n, "psgw_jetstream") {
				names = append(names, n)
			}
		}
		t.Errorf("no %s metric (%s, %s%s); near misses %q; psgw metrics present: %q", w.what, w.name, w.typ, map[bool]string{true: ", label " + w.label, false: ""}[w.label != ""], near, names)
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func sumOf(fams []*dto.MetricFamily) float64 {
	s := 0.0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			s += sampleValue(m)
		}
	}
	return s
}

// §5: liveness, readiness and the status page.
func TestOpsHealthAndStatusPage(t *testing.T) {
	e := shared(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, b := httpGet(t, e.gw.url(p)); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, b)
		}
	}
	r := doReq(t, http.MethodGet, e.gw.url("/"), nil, nil)
	if r.status != 200 || !strings.Contains(strings.ToLower(r.header.Get("Content-Type")), "html") {
		t.Errorf("GET /: want 200 HTML, got %d %s", r.status, r.header.Get("Content-Type"))
	}
}

// §5: /metrics parses, every name starts psgw_, and the required metrics are there from the
// start, before anything has been received, delivered or failed.
func TestOpsMetricsAtStart(t *testing.T) {
	e := shared(t)
	fams := parseMetrics(t, e.initialMetrics)
	for name := range fams {
		if !strings.HasPrefix(name, "psgw_") {
			t.Errorf("metric %s is not prefixed psgw_", name)
		}
	}
	for _, w := range []metricWant{wantDelivered, wantFailed, wantRetries, wantDepth, wantOldest, wantLatency} {
		t.Run(w.what, func(t *testing.T) { w.find(t, fams) })
	}
}

// §5: after traffic the metrics move: received per source, delivered, latency observed.
func TestOpsMetricsAfterTraffic(t *testing.T) {
	e := shared(t)
	src := "metrics_src-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	for i := 0; i < 2; i++ {
		inc := incident(uid("MET"))
		inc["source"] = src
		e.gw.mustAccept(t, inc)
		e.gw.waitState(t, src, inc["local_id"].(string), "delivered")
	}
	// The record can read delivered a moment before the counters move: scrape until both
	// deliveries show or the deadline passes, then let the checks below say what is missing.
	counted := func(w metricWant, fams map[string]*dto.MetricFamily) float64 {
		var out []*dto.MetricFamily
		for name, f := range fams {
			if w.name.MatchString(name) && f.GetType() == w.typ {
				out = append(out, f)
			}
		}
		return sumOf(out)
	}
	fams := scrape(t, e.gw)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); fams = scrape(t, e.gw) {
		if counted(wantDelivered, fams) >= 2 && counted(wantLatency, fams) >= 2 {
			break
		}
		time.Sleep(40 * time.Millisecond)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "psgw_") {
			t.Errorf("metric %s is not prefixed psgw_", name)
		}
	}
	recv := wantReceived.find(t, fams)
	got := 0.0
	for _, f := range recv {
		for _, m := range f.GetMetric() {
			if labelValue(m, "source") == src {
				got += sampleValue(m)
			}
		}
	}
	if len(recv) > 0 && got < 2 {
		t.Errorf("received for source %s: %v, want at least 2", src, got)
	}
	if d := wantDelivered.find(t, fams); len(d) > 0 && sumOf(d) < 2 {
		t.Errorf("delivered: %v, want at least 2", sumOf(d))
	}
	if l := wantLatency.find(t, fams); len(l) > 0 && sumOf(l) < 2 {
		t.Errorf("delivery latency histogram count %v, want at least 2", sumOf(l))
	}
	wantFailed.find(t, fams)
	wantRetries.find(t, fams)
	wantDepth.find(t, fams)
	wantOldest.find(t, fams)
}

// §5: when the national service refuses the subscription key, delivery pauses and the status
// API says so, while /readyz stays 200: the gateway can still accept and store.
func TestOpsReadyzRefusedKey(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	g := startGateway(t, gwOpts{
		noMLLP:  true,
		waitFor: "/healthz",
		env: map[string]string{
			"PSGW_MLLP_ADDR":                 "",
			"PSGW_NATIONAL_BASE_URL":         s.url,
			"PSGW_NATIONAL_SUBSCRIPTION_KEY": "not-the-key",
		},
	})
	id := uid("KEY")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	wait.Until(t, 20*time.Second, "the status API to show delivery paused after the national service refused the key", func() bool {
		_, body := httpGet(t, g.url("/api/v1/status"))
		return strings.Contains(string(body), `"paused":true`)
	})
	if code, _ := httpGet(t, g.url("/readyz")); code != 200 {
		t.Errorf("/readyz %d while delivery is paused; it should stay 200 (ingest still stores)", code)
	}
	checkAccepted(t, g.postIncident(t, fullIncident(uid("KEY"))))
	if code, _ := httpGet(t, g.url("/healthz")); code != 200 {
		t.Errorf("/healthz %d while paused; liveness should stay 200", code)
	}
	rec, ok := g.getRecord(t, "datix", id)
	if !ok || rec.State == "delivered" || !allStates[rec.State] {
		t.Errorf("incident sent with a refused key: %+v", rec)
	}
	if n := len(s.events(t)); n != 0 {
		t.Errorf("%d events reached the simulator with a wrong key", n)
	}
}

// §4, §5: transient failures are retried and show in the metrics. Every request is answered
// 503 (--down), which proves nothing was stored; a 500 or 502 to a POST may have been stored
// and ends unknown instead (§4).
func TestOpsRetryingShowsInMetrics(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--down")
	g := startGateway(t, gwOpts{noMLLP: true, simURL: s.url, env: map[string]string{"PSGW_MLLP_ADDR": ""}})
	id := uid("RETRY")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	g.waitRecord(t, "datix", id, 20*time.Second, "retried", func(r record) bool {
		return r.Attempts >= 2 && (r.State == "retrying" || r.State == "delivering")
	})
	wait.Until(t, 20*time.Second, "retries, outbox depth and oldest age to show", func() bool {
		fams := scrape(t, g)
		var retries, depth, oldest float64
		for name, f := range fams {
			v := sumOf([]*dto.MetricFamily{f})
			switch {
			case wantRetries.name.MatchString(name) && f.GetType() == wantRetries.typ:
				retries += v
			case wantDepth.name.MatchString(name) && f.GetType() == wantDepth.typ:
				depth += v
			case wantOldest.name.MatchString(name) && f.GetType() == wantOldest.typ:
				oldest += v
			}
		}
		return retries >= 1 && depth >= 1 && oldest > 0
	})
	rec, _ := g.getRecord(t, "datix", id)
	if rec.LastError == "" {
		t.Errorf("a retrying incident has no last_error")
	}
}

// §2, §4: a POST whose answer is lost ends unknown and is not created twice.
func TestOpsLostResponseIsUnknown(t *testing.T) {
	t.Parallel()
	s := startSim(t, "--lost-response-rate", "1")
	g := startGateway(t, gwOpts{noMLLP: true, simURL: s.url, env: map[string]string{"PSGW_MLLP_ADDR": ""}})
	id := uid("LOST")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	rec := g.waitSettled(t, "datix", id)
	if rec.State != "unknown" {
		t.Errorf("state %s (%s), want unknown: the national service stored it but never answered", rec.State, rec.LastError)
	}
	// Nothing more must happen, which cannot be awaited: give a wrongly repeated POST the time
	// to reach the simulator.
	time.Sleep(time.Second)
	if n := s.eventsContaining(t, "("+id+")"); n != 1 {
		t.Errorf("%d national events for one incident, want 1", n)
	}
}

// §1: --demo starts an in-process simulator, says so loudly in the log and on the page.
func TestRunDemo(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOpts{args: []string{"--demo"}, noMLLP: true, env: map[string]string{"PSGW_MLLP_ADDR": ""}})
	log := g.out.String()
	loud := false
	for _, l := range strings.Split(log, "\n") {
		ll := strings.ToLower(l)
		if strings.Contains(ll, "demo") && (strings.Contains(l, "DEMO") || strings.Contains(ll, "warn") || strings.Contains(ll, "error")) {
			loud = true
		}
	}
	if !loud {
		t.Errorf("the log does not say loudly (a warning, or DEMO) that this is demo mode:\n%s", tail(log, 2000))
	}
	r := doReq(t, http.MethodGet, g.url("/"), nil, nil)
	if r.status != 200 || !strings.Contains(strings.ToLower(string(r.body)), "demo") {
		t.Errorf("the status page does not mention demo mode (%d)", r.status)
	}
	id := uid("DEMO")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	rec := g.waitSettled(t, "datix", id)
	if rec.State != "delivered" || rec.NationalReference == "" {
		t.Errorf("demo: state %s, national_reference %q; want delivered to the in-process simulator", rec.State, rec.NationalReference)
	}
}

// §1: without --demo and a national endpoint, incidents are held, and the page says why.
// With no data_dir configured, JetStream keeps its files in ./data.
func TestRunHeldWithoutEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startGateway(t, gwOpts{dir: dir, noData: true, noMLLP: true, env: map[string]string{"PSGW_MLLP_ADDR": ""}})
	id := uid("HELD")
	checkAccepted(t, g.postIncident(t, fullIncident(id)))
	rec := g.waitSettled(t, "datix", id)
	if rec.State != "held" {
		t.Errorf("state %s, want held", rec.State)
	}
	r := doReq(t, http.MethodGet, g.url("/"), nil, nil)
	page := strings.ToLower(string(r.body))
	if r.status != 200 || !strings.Contains(page, "held") || !strings.Contains(page, "national") {
		t.Errorf("the status page does not say incidents are held for want of a national endpoint (%d)", r.status)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "data")); err != nil || len(entries) == 0 {
		t.Errorf("no ./data in the working directory (err %v); the default data_dir is ./data", err)
	}
}

// §5: a gateway whose subscription key the national service refuses shows delivery paused,
// even before it has had an incident to send, and stays ready: a paused delivery does not
// fail readiness (sources must keep pushing).
func TestOpsReadyzRefusedKeyAtStart(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	g := startGateway(t, gwOpts{
		noMLLP:  true,
		waitFor: "/healthz",
		env: map[string]string{
			"PSGW_MLLP_ADDR":                 "",
			"PSGW_NATIONAL_BASE_URL":         s.url,
			"PSGW_NATIONAL_SUBSCRIPTION_KEY": "not-the-key",
		},
	})
	wait.Until(t, 10*time.Second, "delivery paused with a refused key and nothing sent", func() bool {
		_, body := httpGet(t, g.url("/api/v1/status"))
		return strings.Contains(string(body), `"paused":true`)
	})
	if code, _ := httpGet(t, g.url("/readyz")); code != 200 {
		t.Errorf("/readyz %d with delivery paused at start; want 200", code)
	}
}
