// Package alerts checks that the alert rules and the dashboard in deploy/ name metrics psgw
// really exports: deploy/prometheus/metrics.txt lists every psgw metric they use, deploy/check
// (a module of its own, for Prometheus's rule and PromQL parsers) holds them to that list, and
// this test holds the list to a running gateway's /metrics (docs/deploy.md, "Alerts").
package alerts

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
	"github.com/psgw/psgw/test/wait"
)

// TestAlertMetricsExist scrapes a gateway that has delivered one incident and had one
// rejected, and finds every metric of deploy/prometheus/metrics.txt among its samples.
func TestAlertMetricsExist(t *testing.T) {
	want := readList(t, filepath.Join("..", "..", "deploy", "prometheus", "metrics.txt"))
	if len(want) < 10 {
		t.Fatalf("metrics.txt lists %d metrics; the rules and the dashboard use more", len(want))
	}

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Adapters[hl7mllp.Section].(*hl7mllp.Config).Addr = ""
	cfg.Queue.Sync = "1s"
	gw, err := gateway.Start(context.Background(), cfg, gateway.Options{Demo: true, Logger: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	base := "http://" + gw.HTTPAddr()
	post(t, base, "AL-1", "Dose given late.")
	post(t, base, "AL-2", "Refuse this one [sim:reject]")
	wait.For(t, 60*time.Second, "every metric of deploy/prometheus/metrics.txt on /metrics", func() (bool, string) {
		missing := missingFrom(want, scrape(t, base))
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
}

func missingFrom(want []string, got map[string]bool) []string {
	var missing []string
	for _, n := range want {
		if !got[n] {
			missing = append(missing, n)
		}
	}
	return missing
}

func readList(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func post(t *testing.T, base, id, desc string) {
	t.Helper()
	body := `{"source":"datix","local_id":"` + id + `","event_type":"incident","occurred_at":"2025-03-14T09:30:00Z",
		"description":"` + desc + `","patients":[{"physical_harm":"none","psychological_harm":"none"}],"location":{"organisation":"RRK"}}`
	resp, err := http.Post(base+"/api/v1/incidents", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("posting %s: %s: %s", id, resp.Status, b)
	}
}

// scrape returns the name of every sample on /metrics (a histogram's _bucket, _sum and _count).
func scrape(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	names := map[string]bool{}
	for name, mf := range fams {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		names[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
		}
	}
	return names
}
