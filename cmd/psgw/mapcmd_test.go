package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/psgw/psgw/internal/gateway"
	"github.com/psgw/psgw/sim"
)

// TestMapExitCodes runs `psgw map` as an operator would: 0 and a payload the simulator accepts
// for a valid incident, 1 and field-named problems for an invalid one, 2 for usage errors.
func TestMapExitCodes(t *testing.T) {
	t.Setenv("PSGW_NATIONAL_TAXONOMY_VERSION", "5")
	post := simulator(t)

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"source":"datix","local_id":"X","event_type":"incident","occurred_at":"2025-01-01","description":"d","patients":[{"nhs_number":"1234567890"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		want     int
		stderr   string
		accepted bool
	}{
		{"valid incident", []string{"--source", "datix", "../../docs/examples/incident-medication.json"}, 0, "", true},
		{"file before flags", []string{"../../docs/examples/risk.json", "--source", "datix"}, 0, "", true},
		// UK dates, a Time column and the export's words, read as the drop folder reads them.
		{"Datix-style listing export", []string{"--config", "../../docs/examples/datix-listing.yaml", "--source", "datix", "../../docs/examples/datix-listing.csv"}, 0, "", true},
		{"invalid incident", []string{"--source", "datix", bad}, 1, "patients[0].nhs_number", false},
		{"ADT message", []string{"--source", "epr", "../../docs/examples/adt-a08.hl7"}, 1, "MSH-9", false},
		{"no source", []string{"../../docs/examples/risk.json"}, 2, "Usage", false},
		{"no file", []string{"--source", "datix"}, 2, "Usage", false},
		{"missing file", []string{"--source", "datix", "/nonexistent.json"}, 2, "no such file", false},
		{"unknown flag", []string{"--sauce", "datix", "x.json"}, 2, "flag provided but not defined", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(append([]string{"map"}, tc.args...), &stdout, &stderr)
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.want, stderr.String())
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.stderr)
			}
			if !tc.accepted {
				return
			}
			if stderr.Len() != 0 {
				t.Errorf("valid incident wrote problems: %s", stderr.String())
			}
			if !json.Valid(stdout.Bytes()) {
				t.Fatalf("stdout is not JSON: %s", stdout.String())
			}
			if status, body := post(stdout.Bytes()); status != http.StatusCreated {
				t.Errorf("the simulator answered %d to psgw map's payload, want 201: %s", status, body)
			}
		})
	}
}

// TestMapWarnings: a misspelt field is named on standard error with a suggestion, on a line
// of its own prefixed "warning: ", and does not change the exit status.
func TestMapWarnings(t *testing.T) {
	t.Setenv("PSGW_NATIONAL_TAXONOMY_VERSION", "6")
	f := filepath.Join(t.TempDir(), "misspelt.json")
	body := `{"source":"datix","local_id":"W1","event_type":"incident","occurred_at":"2025-03-14","description":"Fall",
		"patients":[{"physicalHarm":"severe","sex":"female"}],"location":{"organisation":"RRK","ward":"7"}}`
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := dispatch([]string{"map", "--source", "datix", f}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
	want := "warning: patients[0].physicalHarm: unknown field, ignored; did you mean physical_harm?\n" +
		"warning: location.ward: unknown field, ignored\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if !json.Valid(stdout.Bytes()) || !strings.Contains(stdout.String(), `"GenderIdentity"`) {
		t.Errorf("stdout is not the v6 resource with the patient's sex:\n%s", stdout.String())
	}

	// Warnings beside problems: both are written, the problems unprefixed, and exit 1.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"source":"datix","local_id":"W2","event_type":"incident","description":"x","severity":"high"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := dispatch([]string{"map", "--source", "datix", bad}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := "warning: severity: unknown field, ignored\noccurred_at: is required for event_type incident\n"; stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}

// TestMapV6WithoutPatient: v6 payloads of events with no patient were refused nationally for
// their missing subject while psgw map called them valid; now they carry one and the
// simulator, which requires it, accepts them.
func TestMapV6WithoutPatient(t *testing.T) {
	t.Setenv("PSGW_NATIONAL_TAXONOMY_VERSION", "6")
	post := simulator(t)
	for _, example := range []string{"../../docs/examples/risk.json", "../../docs/examples/good-care.json"} {
		var stdout, stderr bytes.Buffer
		if code := dispatch([]string{"map", "--source", "datix", example}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d, want 0; stderr:\n%s", example, code, stderr.String())
		}
		if status, body := post(stdout.Bytes()); status != http.StatusCreated {
			t.Errorf("%s: the simulator answered %d: %s", example, status, body)
		}
	}
}

// simulator starts a national-service simulator and returns a function that POSTs a payload
// to it and returns the status and body.
func simulator(t *testing.T) func(payload []byte) (int, string) {
	t.Helper()
	s, err := gateway.NewSimulator([]string{"k"}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return func(payload []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/adverse-event/fhir/AdverseEvent", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Ocp-Apim-Subscription-Key", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
}
