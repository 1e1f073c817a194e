// Package check tests the deployment files in deploy/ with the parsers of the tools that load
// them: the alert rules with Prometheus's own rule parser (rulefmt), every expression of the
// rules and of the Grafana dashboard with its PromQL parser. Every psgw metric they name must
// be in deploy/prometheus/metrics.txt, which test/alerts holds to a running gateway's /metrics.
// It is a module of its own so that psgw does not depend on Prometheus's server code; test/alerts
// (TestDeployCheck) runs it under go test ./..., and so .ci/run.
package check

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var (
	rulesFile     = filepath.Join("..", "prometheus", "psgw-rules.yml")
	metricsFile   = filepath.Join("..", "prometheus", "metrics.txt")
	dashboardFile = filepath.Join("..", "grafana", "psgw-dashboard.json")
)

// Alerts the issue asks for, by what they watch (docs/deploy.md, "Alerts").
var wantAlerts = []string{"PsgwDeliveryPaused", "PsgwNationalOutage", "PsgwOldestUndeliveredTooOld",
	"PsgwIncidentsNeedReview", "PsgwStreamNearLimit", "PsgwStoreNearLimit", "PsgwDiskNearFull", "PsgwAdapterDown"}

func TestRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, p, nil)
	if len(errs) > 0 {
		t.Fatalf("rulefmt: %v", errs)
	}
	known := readList(t)
	used := map[string]bool{}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("%s: want a summary annotation and a severity label", r.Alert)
			}
			for _, n := range metricNames(t, p, r.Expr) {
				used[n] = true
				if strings.HasPrefix(n, "psgw_") && !known[n] {
					t.Errorf("%s uses %s, which deploy/prometheus/metrics.txt does not list", r.Alert, n)
				}
			}
		}
	}
	for _, a := range wantAlerts {
		if !slices.Contains(alerts, a) {
			t.Errorf("no alert %s in %s", a, rulesFile)
		}
	}
	dash := dashboardMetrics(t, p)
	for n := range known {
		if !used[n] && !dash[n] {
			t.Errorf("metrics.txt lists %s, which neither the rules nor the dashboard use", n)
		}
	}
}

func TestDashboard(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	known := readList(t)
	for n := range dashboardMetrics(t, p) {
		if strings.HasPrefix(n, "psgw_") && !known[n] {
			t.Errorf("the dashboard uses %s, which deploy/prometheus/metrics.txt does not list", n)
		}
	}
}

// dashboardMetrics parses the dashboard's JSON and every target's expression, returning the
// metric names they use.
func dashboardMetrics(t *testing.T, p parser.Parser) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: want a title, a uid and panels", dashboardFile)
	}
	names := map[string]bool{}
	for _, v := range d.Templating.List {
		// label_values(METRIC, label): Grafana's, with a PromQL selector inside.
		q, _ := v.Query.(string)
		if sel, ok := strings.CutPrefix(q, "label_values("); ok {
			sel = sel[:strings.LastIndex(sel, ",")]
			for _, n := range metricNames(t, p, sel) {
				names[n] = true
			}
		}
	}
	for _, panel := range d.Panels {
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, tg := range panel.Targets {
			// Grafana's variables are not PromQL: $instance stands for a regular expression.
			expr := strings.ReplaceAll(tg.Expr, "$instance", ".*")
			for _, n := range metricNames(t, p, expr) {
				names[n] = true
			}
		}
	}
	return names
}

func metricNames(t *testing.T, p parser.Parser, expr string) []string {
	t.Helper()
	e, err := p.ParseExpr(expr)
	if err != nil {
		t.Errorf("%q: %v", expr, err)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

func readList(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out[l] = true
		}
	}
	return out
}
