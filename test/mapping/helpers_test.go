package mapping

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/psgw/psgw/fhir"
	"github.com/psgw/psgw/sim"
)

// goldenDir is fhir's golden cases, shared with this package.
const goldenDir = "../../fhir/testdata"

// now is the golden cases' clock.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// codeMaps repeat fhir's golden code maps (fhir/golden_test.go), which tests here cannot
// import.
var codeMaps = fhir.SourceCodeMaps{
	"datix": {
		"reporter.role":           {"*": {"RN": "5", "HCA": "1", "FY1": "4"}},
		"reporter.involvement":    {"*": {"WIT": "1", "TOLD": "2", "CARE": "4"}},
		"location.service_area":   {"*": {"ACUTE": "1", "MH": "4"}},
		"location.within_service": {"5": {"WARD": "4", "BADMAP": "99"}, "6": {"WARD": "4", "BADMAP": "99"}},
		"location.specialty":      {"*": {"CARDIO": "10"}},
		"patients.ethnicity":      {"*": {"WBRI": "11"}},
		"patients.sex":            {"6": {"female": "1", "male": "2"}},
		"process":                 {"*": {"TREAT": "6"}},
		"detection_point":         {"*": {"DIRECT": "4"}},
		"time_of_day":             {"*": {"DAY": "1", "NIGHT": "2"}},
		"agents.devices.type":     {"*": {"PUMP": "3"}},
	},
}

// simValidate adapts the gateway's own payload check to the simulator, so that the two are
// equally strict by construction.
func simValidate(version int, res map[string]any) []sim.Issue {
	ps := fhir.CheckPayload(version, res)
	out := make([]sim.Issue, len(ps))
	for i, p := range ps {
		out[i] = sim.Issue{Path: p.Path, Rule: p.Rule, Message: p.Message}
	}
	return out
}

// national is a simulator behind an httptest server.
type national struct {
	t   testing.TB
	srv *httptest.Server
}

func newNational(t testing.TB) *national {
	t.Helper()
	s, err := sim.New(sim.Options{SubscriptionKeys: []string{"k"}, Validate: simValidate})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &national{t: t, srv: srv}
}

// post sends one payload and returns the status and body.
func (n *national) post(payload []byte) (int, string) {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.srv.URL+"/adverse-event/fhir/AdverseEvent", bytes.NewReader(payload))
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ocp-Apim-Subscription-Key", "k")
	resp, err := n.srv.Client().Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// goldenCase is one of fhir's golden cases.
type goldenCase struct {
	name    string
	input   []byte
	version int
	age     string
}

func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*", "input.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases in %s: %v", goldenDir, err)
	}
	var out []goldenCase
	for _, f := range files {
		dir := filepath.Dir(f)
		c := goldenCase{name: filepath.Base(dir), version: 5}
		if c.input, err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
		if raw, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
			var o struct {
				Version     int    `json:"version"`
				AgeEncoding string `json:"age_encoding"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatal(err)
			}
			c.version, c.age = o.Version, o.AgeEncoding
		}
		out = append(out, c)
	}
	return out
}

func (c goldenCase) builder() *fhir.Builder {
	return &fhir.Builder{Version: c.version, AgeEncoding: c.age, Codes: fhir.NewCodeMaps(c.version, codeMaps)}
}
