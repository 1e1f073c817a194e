package mapping

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/psgw/psgw/config"
	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/internal/gateway"
)

const examplesDir = "../../docs/examples"

// TestExamplesAccepted maps the README's example incidents as psgw map does, on the default
// configuration and on docs/examples/map-config.yaml, for both taxonomy versions, and sends
// the payloads to the simulator, which must accept them.
func TestExamplesAccepted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.json"))
	if err != nil || len(files) < 4 {
		t.Fatalf("got %d example incidents, want at least 4 (%v)", len(files), err)
	}
	withMaps, err := config.Load(filepath.Join(examplesDir, "map-config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := withMaps.Validate(); err != nil {
		t.Fatalf("map-config.yaml: %v", err)
	}
	n := newNational(t)
	for i, cfg := range []config.Config{config.Default(), withMaps} {
		for _, version := range []int{5, 6} {
			cfg.National.TaxonomyVersion = version
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				sendExample(t, n, cfg, filepath.Base(f), data)
			}
			if i == 1 { // the CSV's local codes need the example's code maps
				sendExample(t, n, cfg, "incidents.csv", csvExample(t, withMaps))
			}
		}
	}
}

func sendExample(t *testing.T, n *national, cfg config.Config, name string, data []byte) {
	t.Helper()
	in, problems := fhir.ParseIncident(data, fhir.ParseOptions{Now: now})
	if len(problems) > 0 {
		t.Errorf("%s: %v", name, problems)
		return
	}
	b := &fhir.Builder{Version: cfg.National.TaxonomyVersion, AgeEncoding: cfg.Mapping.AgeEncoding, Codes: gateway.CodeMaps(cfg)}
	prep := b.Prepare(in)
	if len(prep.Problems) > 0 {
		t.Errorf("%s (v%d): %v", name, cfg.National.TaxonomyVersion, prep.Problems)
		return
	}
	if status, body := n.post(prep.Payload); status != 201 {
		t.Errorf("%s (v%d): got status %d, want 201: %s", name, cfg.National.TaxonomyVersion, status, body)
	}
}

// csvExample is the first data row of docs/examples/incidents.csv as incident JSON.
func csvExample(t *testing.T, cfg config.Config) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(examplesDir, "incidents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("incidents.csv: %v", err)
	}
	data, problems := fhir.IncidentFromRecord("datix", cfg.Sources["datix"].CSVColumns, rows[0], rows[1])
	if len(problems) > 0 {
		t.Fatalf("incidents.csv: %v", problems)
	}
	return data
}
