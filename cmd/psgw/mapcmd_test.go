package main

import (
	"bytes"
	"encoding/json"
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
	s, err := gateway.NewSimulator([]string{"k"}, sim.Faults{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

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
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/adverse-event/fhir/AdverseEvent", bytes.NewReader(stdout.Bytes()))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Ocp-Apim-Subscription-Key", "k")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("the simulator answered %d to psgw map's payload, want 201", resp.StatusCode)
			}
		})
	}
}
