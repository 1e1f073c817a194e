package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMapUsesTheGatewaysSettings: psgw map maps as the gateway would, with the mapping
// settings of the config: a source whose fallbacks are quarantined gets exit 1 and the
// fallback as a problem; the configured placeholder dates of birth give no age; the age
// precision "bracket" sends no AgeAtTimeOfIncidentDays. Unlike the gateway's record, its
// warnings and problems quote the value as the file holds it: the operator has the file.
func TestMapUsesTheGatewaysSettings(t *testing.T) {
	t.Setenv("PSGW_NATIONAL_TAXONOMY_VERSION", "5")
	dir := t.TempDir()
	incident := filepath.Join(dir, "incident.json")
	if err := os.WriteFile(incident, []byte(`{"source":"datix","local_id":"M-1","event_type":"incident",
		"occurred_at":"2025-03-14","description":"Fall","reporter":{"role":"Student paramedic"},
		"patients":[{"date_of_birth":"1937-01-01","physical_harm":"none"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(config string) (int, string, string) {
		t.Helper()
		path := filepath.Join(dir, "psgw.yaml")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := dispatch([]string{"map", "--source", "datix", "--config", path, incident}, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, out, errs := run("mapping:\n  age_encoding: days\n")
	if code != 0 || !strings.Contains(errs, `warning: reporter.role: value "Student paramedic" has no LFPSE code`) ||
		!strings.Contains(out, "AgeAtTimeOfIncidentDays") {
		t.Errorf("defaults: exit %d, stderr %q; want 0, the value quoted in a warning and an exact age", code, errs)
	}

	code, _, errs = run("sources:\n  datix:\n    fallbacks: quarantine\n")
	if code != 1 || !strings.Contains(errs, "reporter.role: value \"Student paramedic\" has no LFPSE code") ||
		!strings.Contains(errs, "this source's fallbacks are quarantined") || strings.Contains(errs, "warning: reporter.role") {
		t.Errorf("fallbacks quarantined: exit %d, stderr %q; want 1 and the fallback as a problem", code, errs)
	}

	code, out, errs = run("mapping:\n  placeholder_birth_dates: [\"1937-01-01\"]\n")
	if code != 0 || strings.Contains(out, "AgeAtTimeOfIncidentDays") || !strings.Contains(errs, "patients[0].date_of_birth: no age sent: it is a placeholder date") {
		t.Errorf("configured placeholder: exit %d, stderr %q; want 0, no age and the placeholder warning", code, errs)
	}

	code, out, _ = run("mapping:\n  age_precision: bracket\n")
	if code != 0 || strings.Contains(out, "AgeAtTimeOfIncidentDays") || !strings.Contains(out, "AgeBracket") {
		t.Errorf("bracket: exit %d; want 0 and AgeBracket only:\n%s", code, out)
	}
}
